#!/usr/bin/env python3
"""Does a merge clause ever change its own local result?  remake.py asks whether a
clause changes a merge; this asks whether it fires at all, on every merge of fuzz
histories made again in a fresh Repo by a copy of gtfc.py with counters beside the
clauses of the make mutate entries no test catches (session 44).  Each probe
compares the clause's local result with the entry's mutant's.

    cd <checkout> && python3 bench/engine33/probe.py found
    cd <checkout> && python3 bench/engine33/probe.py FIRST COUNT [revive]

The probes are tied to gtfc.py's text: one that no longer applies stops the run.
"""
import collections
import importlib.util
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gtfc  # noqa: E402
import remake  # noqa: E402
import test_gtfc as t  # noqa: E402

HITS = collections.Counter()

# (the clause's text, a probe line put before or after it, "before" | "after")
PROBES = [
    ("        dated = {w for w in bases_ or () if any(history.follows(c, w) for c in chmods)}\n",
     "        if dated or chmods: _probe('a chmod dates a merge base')\n", "after"),
    ("    deletes = [d for d in top if not name_held(history, name, d)]\n",
     "    if len(deletes) != len(top): _probe('a copy deleted while its name held it')\n",
     "after"),
    ("                 and not moved_on(history, path, w, sides)] if body and not settled else []\n",
     None, "moved_on"),
    ("                    or standing_sides(states, out[BODY]) or states\n",
     "                if standing[0][BIT].value != states[0][BIT].value: "
     "_probe('a bit only copies deletes wrote')\n", "after"),
    ("            value = False if r == HERE and len(states) > 1 and not all(\n",
     "            if r == HERE and len(states) > 1 and all(s[HERE].value and s[BODY].value"
     " == states[0][BODY].value for s in states): "
     "_probe('each side deleted the copy of the other bit of one content')\n", "before"),
    ("        if r == BIT and len({s[r].value for s in holders}) > 1:\n",
     "        if r == BIT and len({s[r].value for s in holders}) > 1 and (standing_sides("
     "holders, out[BODY]) or holders)[0][r].value != holders[0][r].value: "
     "_probe('colliding bit writes settled apart')\n", "before"),
    ("            holders = [s for s in filed if wrote_bit\n",
     "            if [s[r].value for s in filed if wrote_bit and bit_writes(history, path, "
     "s[r].writers) == wrote_bit] != [s[r].value for s in states if wrote_bit and "
     "bit_writes(history, path, s[r].writers) == wrote_bit]: "
     "_probe('a side with no file gives the bit')\n", "before"),
]


def probed():
    source = open(gtfc.__file__).read()
    for clause, line, where in PROBES:
        if source.count(clause) != 1:
            sys.exit(f"no longer applies: {clause.strip()}")
        if where == "moved_on":
            new = clause.replace("and not moved_on(history, path, w, sides)]",
                                 "and not _probe_if(moved_on(history, path, w, sides), "
                                 "'a chmod whose node moved on')]")
        else:
            new = clause + line if where == "after" else line + clause
        source = source.replace(clause, new)
    where = os.path.join(tempfile.mkdtemp(prefix="gtfc-probe-"), "gtfc_probe.py")
    with open(where, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("gtfc_probe", where)
    module = importlib.util.module_from_spec(spec)
    module._probe = lambda name: HITS.update([name])
    module._probe_if = lambda value, name: HITS.update([name] if value else []) or value
    spec.loader.exec_module(module)
    return module


def main(args):
    module, merges_made = probed(), 0
    for seed, copies, revive in remake.histories(args):
        tmp = tempfile.mkdtemp(prefix="gtfc-probe-")
        try:
            fuzz = t.found_history(seed, copies, revive, tmp, remake=0)
            fuzz.run()
            fresh, merges = fuzz.fresh_repo(), fuzz.all_merges()
            before = HITS.copy()
            for _merge, *sides in merges:
                remake.merge(module, module.Repo(fresh), sides)
            merges_made += len(merges)
            if HITS != before:
                print(f"seed {seed}: {dict(HITS - before)}", flush=True)
        except Exception as e:  # noqa: BLE001 — a crash is a finding too
            print(f"seed {seed}: crashed {e!r}", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{merges_made} merges; fired: {dict(HITS)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
