#!/usr/bin/env python3
"""Which found fuzz histories make test must replay: for each make mutate entry
that names the found seeds, a found history that catches it, chosen greedily (the
ones already chosen are tried first, then the rest in found_histories() order).
How MergeFuzzTest.IN_MAKE_TEST was chosen (session 43); run it again when a
merge entry is added, and add what it picks.

    cd <checkout> && python3 bench/engine33/cover.py STATE.json [entry-name-part...]

STATE.json keeps what is done, so a run stopped part-way goes on where it was
(bench/engine33/cover-state.json: session 43's, all 43 entries done).
Each entry runs in a subprocess on a copy of gtfc.py with the entry applied and
stops at its first failing history; an entry no history catches is named.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.getcwd())
import test_gtfc as t  # noqa: E402

# Run with GTFC_PY naming the mutant: the first of argv[1]'s histories that fails.
FIRST_FAILING = r'''
import json, os, sys
sys.path.insert(0, os.getcwd())
import test_gtfc as t
for history in json.loads(sys.argv[1]):
    failures = t.replay_found([history])
    if failures:
        print(json.dumps([history, failures[0][:300]]), flush=True)
        break
'''


def main(state_path, wanted):
    with open(t.GTFC_PY) as f:
        source = f.read()
    state = {"chosen": [], "by": {}}
    if os.path.exists(state_path):
        with open(state_path) as f:
            state = json.load(f)
    found = [list(h) for h in t.found_histories()]
    for m in t.MUTATIONS:
        if not set(t.FOUND_TESTS) & set(m.tests) or m.name in state["by"] \
                or wanted and not any(w in m.name for w in wanted):
            continue
        if source.count(m.old) != 1:
            print(f"no longer applies: {m.name}", flush=True)
            continue
        folder = tempfile.mkdtemp(prefix="gtfc-cover-")
        path = os.path.join(folder, "gtfc.py")
        with open(path, "w") as f:
            f.write(source.replace(m.old, m.new))
        order = state["chosen"] + [h for h in found if h not in state["chosen"]]
        run = subprocess.run([sys.executable, "-c", FIRST_FAILING, json.dumps(order)],
                             env=dict(os.environ, GTFC_PY=path, PYTHONDONTWRITEBYTECODE="1"),
                             capture_output=True, text=True)
        lines = run.stdout.strip().splitlines()
        hit = json.loads(lines[-1]) if lines else None
        if hit and hit[0] not in state["chosen"]:
            state["chosen"].append(hit[0])
        state["by"][m.name] = hit
        with open(state_path, "w") as f:
            json.dump(state, f, indent=1)
        print(f"{m.name}: " + (hit[1] if hit else "NOT CAUGHT by any found history"),
              flush=True)
    print("chosen:", sorted(h[0] for h in state["chosen"]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
