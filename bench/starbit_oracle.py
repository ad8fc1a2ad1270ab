"""Oracle: the executable bit by *-merge (mark-merge) over the path's history in
the region a merge reads, next to what gtfc's rule gives (session 24; see
bench/HISTORY.md).  A lab tool: it patches gtfc's functions in this process only:
rule 32's settle_path and merge_trees, so it runs against a gtfc.py before rule 33
(GTFC_DIR: a checkout of 777c9dc or older)."""
import collections
import sys
import os
sys.path.insert(0, os.environ.get("GTFC_DIR") or os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
import gtfc  # noqa: E402

STATS = collections.Counter()
LOG = []


def star_bit(repo, path, sides, bases):
    graph = gtfc.commit_graph(repo, list(sides))
    floor = bases[:1]
    for base in bases[1:]:
        floor = graph.bases(floor, [base])
        if not floor:
            return None
    region = sorted((c for _, c in graph.apart(list(sides), floor)),
                    key=lambda c: graph.generation[c])
    inside = set(region)
    diffs = gtfc.commit_diffs(repo, region)
    value, marks, anc = {}, {}, {}

    def val(c):
        if c not in value:
            v = gtfc.tree_versions(repo, c, [path])[path]
            value[c] = v[0] if v else None
            marks[c] = frozenset({"~" + str(value[c])})     # older than the region: common
            anc[c] = frozenset()
        return value[c]
    for c in region:
        parents = list(graph.parents(c))
        for p in parents:
            val(p)
        changed = [new for p, old, new in diffs[c] if p == path]
        v = (changed[0][0] if changed[0] else None) if changed else (value[parents[0]] if parents else None)
        value[c] = v
        anc[c] = frozenset(set(parents) | {a for p in parents for a in anc[p]})
        same = [p for p in parents if value[p] == v]
        if not parents or not same:
            marks[c] = frozenset({c})
        else:
            marks[c] = frozenset().union(*(marks[p] for p in same))
    a, b = sides

    def seen(ms, side):
        return all(m.startswith("~") or m in anc[side] or m == side for m in ms)
    va, vb = value[a], value[b]
    if va == vb:
        return va
    if seen(marks[b], a) and not seen(marks[a], b):
        return va
    if seen(marks[a], b) and not seen(marks[b], a):
        return vb
    return "conflict"


def install(replace=False):
    orig = gtfc.settle_path

    def settle_path(repo, path, ours, theirs, stories, bases, base, held, *rest):
        out = orig(repo, path, ours, theirs, stories, bases, base, held, *rest)
        sides = CURRENT.get("sides")
        if not sides or gtfc.meta_target(path) or gtfc.copy_original(path) \
                or not (ours and theirs and ours[0] in gtfc.FILE_MODES and theirs[0] in gtfc.FILE_MODES):
            return out
        settled = dict(out).get(path)
        if not settled or settled[0] not in gtfc.FILE_MODES:
            STATS["gtfc-no-file"] += 1
            return out
        try:
            star = star_bit(repo, path, sides, bases)
        except Exception as e:  # noqa
            STATS["error"] += 1
            return out
        if star is None:
            STATS["no-floor"] += 1
        elif star == "conflict":
            STATS["star-conflict" + ("-gtfc-collided" if len(out) > 1 else "")] += 1
        elif star == settled[0]:
            STATS["agree"] += 1
        else:
            STATS["differ" + ("-collided" if len(out) > 1 else "")] += 1
            LOG.append((path, settled[0], star))
            if replace and len(out) == 1:
                return [(path, (star, settled[1]))]
        return out

    gtfc.settle_path = settle_path
    orig_mt = gtfc.merge_trees

    def merge_trees(repo, bases, sides):
        saved = CURRENT.get("sides")
        CURRENT["sides"] = sides
        try:
            return orig_mt(repo, bases, sides)
        finally:
            CURRENT["sides"] = saved
    gtfc.merge_trees = merge_trees


CURRENT = {}


def main(argv):
    """python3 bench/starbit_oracle.py observe|replace SEED... (GTFC_DIR: the folder
    holding the gtfc.py and test_gtfc.py to run, by default this checkout; FOUND=1:
    the seeds as MergeFuzzTest.FOUND_SEEDS runs them)."""
    import os, shutil, tempfile
    import test_gtfc as T
    mode, seeds = argv[0], [int(s) for s in argv[1:]]
    install(replace=mode == "replace")
    bad = 0
    for seed in seeds:
        tmp = tempfile.mkdtemp(prefix="gtfc-star-")
        try:
            if os.environ.get("FOUND"):
                copies = dict(T.MergeFuzzTest.FOUND_SEEDS)[seed]
                fuzz = T.MergeFuzz(seed, tmp, nodes=3 + seed % 3, steps=30 + seed % 40,
                                   copies=copies)
            else:
                fuzz = T.MergeFuzz(seed, tmp, nodes=3 + seed % 3, steps=30 + seed % 40,
                                   cuts=0.2, copies=seed % 2 == 0)
            problems = fuzz.run()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if problems:
            bad += 1
            print(seed, problems[:3], flush=True)
    print("failed", bad, "of", len(seeds), dict(STATS))


if __name__ == "__main__":
    import os, sys
    sys.path.insert(0, os.environ.get("GTFC_DIR") or os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    main(sys.argv[1:])
