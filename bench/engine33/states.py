#!/usr/bin/env python3
"""The prototype's annotated history of one path for the merge of two commits:
each commit's registers (HERE, BODY, BIT) with their writers.  Run in a node's
repo, with GTFC_DIR naming the folder of the prototype's gtfc.py:

    GTFC_DIR=/path/to/prototype python3 states.py COMMIT COMMIT PATH
"""
import os
import sys

sys.path.insert(0, os.environ["GTFC_DIR"])
import gtfc  # noqa: E402

repo = gtfc.Repo(".")
a, b = sorted(repo.out("rev-parse", sys.argv[1], sys.argv[2]).split())
path = sys.argv[3].encode()
bases = gtfc.merge_bases(repo, a, b)
history = gtfc.read_history(repo, (a, b), bases,
                            sorted({path, gtfc.copy_original(path) or path}))
graph = repo.graph


def name(c):
    return f"{c[:7]}({graph.info[c][2]})"


def shown(value):
    return value[1][:7] if isinstance(value, tuple) else value


print("bases", [name(c) for c in bases])
for c in sorted(history.states, key=lambda c: history.index[c]):
    print(name(c), [(shown(r.value), sorted(map(name, r.writers)))
                    for r in history.states[c][path]])
