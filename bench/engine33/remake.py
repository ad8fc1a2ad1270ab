#!/usr/bin/env python3
"""Every merge of fuzz histories made again, two ways, each against the merge made
in a fresh Repo by the gtfc.py here; prints the merges whose trees differ.

    cd <checkout> && python3 bench/engine33/remake.py warm FIRST COUNT [revive]
    cd <checkout> && python3 bench/engine33/remake.py MUTANT[,MUTANT...] FIRST COUNT [revive]
    cd <checkout> && python3 bench/engine33/remake.py MUTANT[,MUTANT...] found

warm: in one Repo, in two shuffled orders: is a merge the same whatever else the
process merged first?  Its kept history then holds many merges outside each
window; make fuzz checks a node's kept history once per merge, and this stirs it
harder (session 41: it finds 4540046's split on rule 58).

MUTANT, a file (the old text of gtfc.py, a line "====", the new text) or a part
of a make mutate entry's name: with that change, in a fresh Repo: does a clause
change any merge?  For make mutate entries no test catches, before deleting what
they change (session 41).  Several, comma-separated, share one build of each
history (session 44).  "found": the histories make test replays.
"""
import importlib.util
import os
import random
import shutil
import sys
import tempfile

sys.path.insert(0, os.getcwd())
import gtfc  # noqa: E402
import test_gtfc as t  # noqa: E402


def histories(args):
    """(seed, copies or None for fuzz_history's, revive) for the command line."""
    if args[0] == "found":
        return t.found_histories()
    first, count = int(args[0]), int(args[1])
    return [(seed, None, args[2:] == ["revive"]) for seed in range(first, first + count)]


def mutant(name):
    """(name, module): gtfc.py with a MUTFILE's change, or a make mutate entry's."""
    if os.path.exists(name):
        old, new = open(name).read().split("\n====\n")
    else:
        entries = [m for m in t.MUTATIONS if name in m.name]
        if len(entries) != 1:
            sys.exit(f"{name}: names {len(entries)} make mutate entries, not one")
        old, new = entries[0].old, entries[0].new
    source = open(gtfc.__file__).read()
    if source.count(old) != 1:
        sys.exit(f"{name}: its old text is not in {gtfc.__file__} once")
    where = os.path.join(tempfile.mkdtemp(prefix="gtfc-mutant-"), "gtfc_mutant.py")
    with open(where, "w") as f:
        f.write(source.replace(old, new))
    spec = importlib.util.spec_from_file_location("gtfc_mutant", where)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return name, module


def merge(module, repo, sides):
    return module.causal_merge_tree(repo, module.merge_bases(repo, *sides), tuple(sides))


def main(mode, args):
    mutants = [("warm", None)] if mode == "warm" else \
        [mutant(name) for name in mode.split(",")]
    merges_made, differing = 0, {name: 0 for name, _ in mutants}
    for seed, copies, revive in histories(args):
        tmp = tempfile.mkdtemp(prefix="gtfc-remake-")
        try:
            fuzz = t.found_history(seed, copies, revive, tmp, remake=0)
            fuzz.run()
            fresh, merges = fuzz.fresh_repo(), fuzz.all_merges()
            ref = {m: merge(gtfc, gtfc.Repo(fresh), sides) for m, *sides in merges}
            merges_made += len(merges)
            for name, other in mutants:
                apart = set()
                if other is None:
                    for k in range(2):
                        order = merges[:]
                        random.Random(seed * 10 + k).shuffle(order)
                        repo = gtfc.Repo(fresh)
                        apart |= {m for m, *sides in order
                                  if merge(gtfc, repo, sides) != ref[m]}
                else:
                    apart = {m for m, *sides in merges
                             if merge(other, other.Repo(fresh), sides) != ref[m]}
                differing[name] += len(apart)
                if apart:
                    print(f"{name}: seed {seed}: {len(apart)} of {len(merges)} merges "
                          f"differ: {sorted(m[:7] for m in apart)[:5]}", flush=True)
        except Exception as e:  # noqa: BLE001 — a crash is a finding too
            print(f"seed {seed}: crashed {e!r}", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for name, count in differing.items():
        print(f"{name}: {count} of {merges_made} merges differ", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
