# gtfc — everything here runs from a plain checkout; see README.md.
PYTHON ?= python3
PREFIX ?= $(if $(filter 0,$(shell id -u)),/usr/local,$(HOME)/.local)

.PHONY: test demo install check chaos fuzz found latency bench mutate powercut horizon

test:            ## the whole suite: unit tests and a real multi-host sshd cluster (root; a skip fails it; UNIT=1: the unit tier alone)
	$(PYTHON) test_gtfc.py $(if $(UNIT),--unit)

demo:            ## a throwaway 3-node cluster on loopback; watch edits arrive (HOLD=1: keep it up)
	$(PYTHON) test_gtfc.py --demo $(if $(HOLD),--hold)

install:         ## gtfc.py to $(PREFIX)/lib/gtfc, a launcher $(PREFIX)/bin/gtfc, the gtfc-* links
	$(PYTHON) gtfc.py install --prefix $(PREFIX)

check:           ## gtfc.py must run on Python 3.9 (vermin, from PyPI, test-time only)
	vermin --no-tips --violations -t=3.9- gtfc.py

chaos:           ## long chaos run: NODES nodes, SECONDS each, several seeds; then CUTS power cuts per seed (root)
	$(PYTHON) test_gtfc.py --chaos $(or $(NODES),5) $(or $(SECONDS),300) $(SEEDS)
	$(PYTHON) test_gtfc.py --powercut $(or $(CUTS),100) $(or $(SEEDS),1 2 3)

fuzz:            ## merges of COUNT random multi-node histories (random hosts dropping history) checked against the rule's model after every delivery and at the end, and every merge made again in a fresh Repo (FIRST: first seed; MIX=revive: deleted files come back as old versions)
	$(PYTHON) test_gtfc.py --fuzz $(or $(COUNT),2000) $(or $(FIRST),1) $(MIX)

found:           ## every history the long fuzz runs found, replayed (make test replays a sample; ~6 min)
	$(PYTHON) test_gtfc.py --found

powercut:        ## CUTS power cuts (a FUSE file system that drops what was not fsynced) for each of SEEDS (root)
	$(PYTHON) test_gtfc.py --powercut $(or $(CUTS),50) $(SEEDS)

mutate:          ## break gtfc's promises one at a time in a copy of gtfc.py: which tests catch each (root; a few minutes)
	$(PYTHON) test_gtfc.py --mutate $(MUTATIONS)

latency:         ## push / no-op / watch latencies on a 3-host cluster, medians and p90 (root)
	$(PYTHON) test_gtfc.py --latency

bench:           ## gtfc vs lsyncd, Unison, Syncthing in one run: a table, bench/results.md (root; QUICK=1 < 3 min)
	QUICK=$(QUICK) $(PYTHON) bench/bench_gtfc.py

horizon:         ## a file rewritten N times (100,000) on 3 hosts, then gtfc forget: sizes and times before/after (root)
	N=$(or $(N),100000) $(PYTHON) bench/horizon.py
