#!/usr/bin/env python3
"""One merge-fuzz history, as `make fuzz` runs it, with its action log and the
folder its nodes' repos are left in (to read with states.py).

    cd <checkout with the gtfc.py to test> && python3 bench/engine33/seed.py SEED [revive]
"""
import os
import sys
import tempfile

sys.path.insert(0, os.getcwd())
import test_gtfc as t  # noqa: E402

seed = int(sys.argv[1])
revive = sys.argv[2:] == ["revive"]
tmp = tempfile.mkdtemp(prefix="gtfc-seed-")
fuzz = t.fuzz_history(seed, tmp, revive)
problems = fuzz.run()
print("\n".join(map(str, fuzz.log)))
print("PROBLEMS", problems)
print("repos kept in", tmp)
