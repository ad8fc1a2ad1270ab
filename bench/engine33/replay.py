#!/usr/bin/env python3
"""Replay every gtfc merge of a node's repo with a given gtfc.py, in the order the
node made them, in one process (as a watcher would): time each, check each tree
equals the recorded one, and profile the lot.  --cold K: the K newest merges
instead, each in a fresh Repo (nothing kept: a watcher's first merge after a start).

    GTFC_DIR=/path/to/gtfc python3 replay.py REPO [--profile] [--limit K] [--slowest N]
                                                  [--cold K]
"""
import cProfile, os, pstats, subprocess, sys, time
# GTFC_DIR: the folder of the gtfc.py to replay with (default: this checkout's).
sys.path.insert(0, os.environ.get("GTFC_DIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
import gtfc  # noqa: E402

if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
    sys.exit(__doc__.strip())
repo_dir = sys.argv[1]
profile = "--profile" in sys.argv
limit = int(sys.argv[sys.argv.index("--limit") + 1]) if "--limit" in sys.argv else None
out = subprocess.run(["git", "-C", repo_dir, "log", "--merges", "--reverse", "--date-order",
                      "--format=%H %T %P", "HEAD"], capture_output=True, text=True,
                     check=True).stdout.split("\n")
merges = [line.split() for line in out if line]
if limit:
    merges = merges[:limit]
cold = int(sys.argv[sys.argv.index("--cold") + 1]) if "--cold" in sys.argv else None
if cold:
    merges = merges[-cold:]
repo = gtfc.Repo(repo_dir)
times, differ, slow = [], 0, []
pr = cProfile.Profile()
for commit, tree, *parents in merges:
    if len(parents) != 2:
        continue
    first, second = sorted(parents)
    if cold:
        repo = gtfc.Repo(repo_dir)
    t0 = time.perf_counter()
    if profile:
        pr.enable()
    bases = gtfc.merge_bases(repo, first, second)
    made = gtfc.causal_merge_tree(repo, bases, (first, second)) \
        if hasattr(gtfc, "causal_merge_tree") else gtfc.merge_trees(repo, bases, (first, second))
    if profile:
        pr.disable()
    times.append(time.perf_counter() - t0)
    slow.append((times[-1], commit))
    differ += made != tree
times.sort()
n = len(times)
print(f"merges {n} total {sum(times):.2f}s median {times[n//2]*1000:.1f}ms "
      f"p90 {times[int(n*.9)]*1000:.1f}ms max {times[-1]*1000:.0f}ms trees differing {differ}")
if "--slowest" in sys.argv:
    for took, commit in sorted(slow, reverse=True)[:int(sys.argv[sys.argv.index("--slowest") + 1])]:
        print(f"  {took * 1000:.0f} ms  {commit}")
if profile:
    st = pstats.Stats(pr)
    st.sort_stats("cumulative").print_stats(30)
