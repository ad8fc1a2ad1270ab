"""Review of rule 33 (draft 5a39661): an exhaustive enumerator of small criss-cross
histories of one file, w0.txt, built with commit-tree and gtfc.merge_commits,
checked against test_gtfc.MergeModel for every order of the merge bases.

Phase 1: base authors alpha, beta, gamma act (round robin) from the root.
Phase 2: side nodes delta and eps each fold the three authors' heads, in an order
         given by which author comes last (merge_commits; a criss-cross, so the
         sides' later merge has 2-3 merge bases).
Phase 3: each side acts again; the two tips are merged under every order of the
         merge bases (3 bases: 6 orders; 2: 2) and each result checked.
Optionally a third tip (zeta: the authors' fold in a third order, or nothing).

Ops: C chmod, E edit (new token), X write pool-X, Y pool-Y, I write the first body back,
D delete, N delete and write anew, V write back the first version whole (bit and
all; after D or where absent), K delete the side's conflict copies of w0.
GTFC_PY selects gtfc.py (and the test_gtfc.py beside it).

Usage: python3 enum2.py OUT.jsonl [--p1 ...] [--shard i/n]  (see main)"""
import argparse
import contextlib
import copy
import functools
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from unittest import mock

HERE = os.path.dirname(os.path.abspath(os.environ["GTFC_PY"]))
sys.path.insert(0, HERE)
_argv, sys.argv = sys.argv, [sys.argv[0]]
import test_gtfc as T  # noqa: E402
sys.argv = _argv
gtfc = T.gtfc
PATH = "w0.txt"
INIT = {"mode": "100644", "body": ("file", "init-w0.txt")}

FIRED = []
_orig_bcf = gtfc.both_came_from


def _wrapped(repo, path, versions, stories, bases, common):
    r = _orig_bcf(repo, path, versions, stories, bases, common)
    if not common.collided and r != common.version:     # 78b4ef5 returns common.version
        FIRED.append((len(bases), common.version, r))
    return r


gtfc.both_came_from = _wrapped


def run(*args, input=None, path):
    return subprocess.run(["git", "-C", path, *args], input=input, capture_output=True,
                          check=True, env=dict(os.environ, **gtfc.MERGE_ENV)).stdout


class Fake:
    copies_in = staticmethod(T.MergeFuzz.copies_in)
    check = T.MergeFuzz.check

    def __init__(self, model):
        self.model = model


class World:
    def __init__(self, tmp):
        self.tmp = tmp
        self.path = os.path.join(tmp, "r")
        self.repo = T.make_repo(self.path, "omega")
        self.clock = 10_000
        self.blobs = {}
        self._files = {}
        self.tok = 0
        self.root = self.commit([], {PATH: INIT, "w1.txt": {"mode": "100644",
                                                             "body": ("file", "init-w1.txt")}},
                                "alpha")
        self.model = T.MergeModel({PATH: (dict(INIT), T.fuzz_full(INIT))})
        # repos for merges under each order of merge bases (own memo each)
        self.obs = {}

    def blob(self, state):
        text = state["body"][1] + "\n"
        if text not in self.blobs:
            self.blobs[text] = run("hash-object", "-w", "--stdin", input=text.encode(),
                                   path=self.path).decode().strip()
        return self.blobs[text]

    def files(self, commit):
        """{name: state} of commit's tree (top level, w0 and its copies, w1)."""
        if commit in self._files:
            return dict((k, dict(v)) for k, v in self._files[commit].items())
        out = {}
        for line in run("ls-tree", commit, path=self.path).decode().splitlines():
            meta, name = line.split("\t")
            mode, _, oid = meta.split()
            text = run("cat-file", "blob", oid, path=self.path).decode()
            out[name] = {"mode": mode, "body": ("file", text.rstrip("\n"))}
        self._files[commit] = out
        return dict((k, dict(v)) for k, v in out.items())

    def commit(self, parents, files, who):
        """A node's commit: parents[0]'s files with files ({name: state or None})."""
        current = self.files(parents[0]) if parents else {}
        current.update(files)
        listing = "".join(f"{s['mode']} blob {self.blob(s)}\t{n}\n"
                          for n, s in sorted(current.items()) if s is not None)
        tree = run("mktree", input=listing.encode(), path=self.path).decode().strip()
        self.clock += 2
        stamp = f"@{self.clock} +0000"
        env = dict(GIT_AUTHOR_NAME=who, GIT_AUTHOR_EMAIL=f"gtfc@{who}", GIT_COMMITTER_NAME=who,
                   GIT_COMMITTER_EMAIL=f"gtfc@{who}", GIT_AUTHOR_DATE=stamp,
                   GIT_COMMITTER_DATE=stamp)
        args = ["commit-tree", tree, *sum((["-p", p] for p in parents), []), "-m",
                f"{who}: {PATH}"]
        return subprocess.run(["git", "-C", self.path, *args], capture_output=True, check=True,
                              text=True, env=dict(os.environ, **env)).stdout.strip()

    def token(self, who):
        self.tok += 1
        return ("file", f"{who}-{self.tok}")

    # -- a user's op on node's head; returns the new head (model updated) -----
    def op(self, model, node, head, code):
        files = self.files(head)
        st = files.get(PATH)
        if code == ".":
            return head
        if code == "K":
            copies = [n for n in files if ".conflict-" in n and T.copy_original(n) == PATH]
            if not copies:
                return head
            for c in copies:
                held = T.fuzz_full(files[c])
                name = files.get(PATH)
                settles = name is None or dict(held, mode=None) != dict(name, mode=None) \
                    or held != T.fuzz_full(name) and any(
                        e.path == PATH and e.full == T.fuzz_full(name) for e in model.events)
                blob = self.blob(files[c])
                event = model.act(node, "copy:" + c, {}, None, None, deleted=True)
                model.deleted_copies.append((event, c, blob, PATH, dict(held) if settles else None))
                model.name_held[event.id] = T.fuzz_full(name)
            return self.commit([head], {c: None for c in copies}, node)
        if code == "D":
            if st is None:
                return head
            model.act(node, PATH, {}, None, st, deleted=True)
            return self.commit([head], {PATH: None}, node)
        if code == "N":
            if st is not None:
                head = self.op(model, node, head, "D")
            new = {"mode": "100644", "body": self.token(node)}
            model.act(node, PATH, dict(new), T.fuzz_full(new), {})
            return self.commit([head], {PATH: new}, node)
        if code == "V":
            if st is not None:
                return head
            model.act(node, PATH, dict(INIT), T.fuzz_full(INIT), None)
            return self.commit([head], {PATH: dict(INIT)}, node)
        if st is None:
            return head
        new = dict(st)
        if code == "C":
            new["mode"] = "100644" if st["mode"] == "100755" else "100755"
        elif code == "E":
            new["body"] = self.token(node)
        elif code in "XY":
            new["body"] = ("file", "pool-" + code)
        elif code == "I":
            new["body"] = INIT["body"]
        else:
            raise ValueError(code)
        writes = {r: v for r, v in new.items() if st.get(r) != v}
        if not writes:
            return head
        model.act(node, PATH, writes, T.fuzz_full(new), dict(st))
        return self.commit([head], {PATH: new}, node)

    # -- merges ------------------------------------------------------------------
    def observer(self, bo):
        if bo not in self.obs:
            self.obs[bo] = gtfc.Repo(self.path)
        return self.obs[bo]

    def merge(self, a, b, bo=None):
        repo = self.observer(bo)
        listing = gtfc.merge_bases

        def merge_bases(r, *commits):
            bases = listing(r, *commits)
            if bo is None or len(bases) < 2 or len(bases) > 3:
                return bases
            s = sorted(bases)
            return [s[i] for i in bo if i < len(s)]
        with mock.patch.object(gtfc, "merge_bases", merge_bases), \
                contextlib.redirect_stderr(io.StringIO()):
            return gtfc.merge_commits(repo, a, b)

    def fold(self, commits, bo=None):
        return functools.reduce(lambda x, y: self.merge(x, y, bo), commits)

    def check(self, model, commit, cache):
        tree = run("rev-parse", commit + "^{tree}", path=self.path).decode().strip()
        if tree in cache:
            return cache[tree]
        d = tempfile.mkdtemp(dir=self.tmp, prefix="fold-")
        try:
            arch = run("archive", commit, path=self.path)
            subprocess.run(["tar", "-x", "-C", d], input=arch, check=True)
            problems = Fake(model).check(d)
            summary = []
            for name in sorted(os.listdir(d)):
                if name.startswith("w0"):
                    s = T.fuzz_file_state(d, name, PATH)
                    summary.append(("copy" if ".conflict-" in name else "name",
                                    s["mode"][-3:], s["body"][1]))
            cache[tree] = (problems, summary)
            return cache[tree]
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def version(self, commit):
        s = self.files(commit).get(PATH)
        return s and (s["mode"][-3:], s["body"][1])


AUTHORS = ("alpha", "beta", "gamma")
SIDES = ("delta", "eps")
ALL_BO = list(itertools.permutations(range(3)))


def prefix(w, p1):
    """Phase 1 (round robin) -> {author: (head, known)}; the model is w.model."""
    heads = {a: w.root for a in AUTHORS}
    for step in range(max(len(s) for s in p1)):
        for a, ops in zip(AUTHORS, p1):
            if step < len(ops):
                heads[a] = w.op(w.model, a, heads[a], ops[step])
    return {a: (heads[a], frozenset(w.model.known[a])) for a in AUTHORS}


def side_fold(w, snaps, last):
    order = [a for a in AUTHORS if a != last] + [last]
    commits = [snaps[a][0] for a in order if snaps[a][0] != w.root] or [w.root]
    # drop commits already contained (an author whose ops were all no-ops)
    with contextlib.redirect_stderr(io.StringIO()):
        return w.fold(commits) if len(commits) > 1 else commits[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--p1ops", default=".,C,CC,E,X,XC,CX,D")
    ap.add_argument("--p3ops", default=".,C,E,X,I,D,N,K,EC,DV")
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--only", default=None, help="json list of [p1, lastP, lastQ, p3P, p3Q]")
    ap.add_argument("--all", action="store_true", help="no prefilter")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--prefilter-only", action="store_true")
    args = ap.parse_args()
    p1ops = args.p1ops.split(",")
    p3ops = args.p3ops.split(",")
    shard, shards = map(int, args.shard.split("/"))
    only = (json.load(open(args.only[1:])) if args.only.startswith("@") else json.loads(args.only)) if args.only else None
    if only:
        combos = sorted({tuple(o[0]) for o in only})
    else:
        combos = [c for c in itertools.product(p1ops, repeat=3)
                  if sum(1 for x in c if x != ".") >= 2]
    combos = [c for i, c in enumerate(combos) if i % shards == shard]
    out = open(args.out, "a")
    started, n_hist = time.time(), 0
    for p1 in combos:
        tmp = tempfile.mkdtemp(prefix="rv28e2-")
        try:
            w = World(tmp)
            snaps = prefix(w, p1)
            bases_heads = [snaps[a][0] for a in AUTHORS]
            known_all = frozenset().union(*(snaps[a][1] for a in AUTHORS))
            base_model = w.model
            folds = {last: side_fold(w, snaps, last) for last in AUTHORS}
            fired_p2 = len(FIRED)
            # the bases' own versions and their merge in every order (common_versions)
            for lastP, lastQ in itertools.product(AUTHORS, repeat=2):
                if lastQ < lastP:
                    continue        # the two sides are symmetric but for names
                if only and not any(o[0] == list(p1) and o[1] == lastP and o[2] == lastQ
                                    for o in only):
                    continue
                hp, hq = folds[lastP], folds[lastQ]
                # prefilter: the sides' versions and the bases' merge in each order
                probe_p = w.commit([hp], {"w1.txt": {"mode": "100644", "body": ("file", "p")}},
                                   "delta")
                probe_q = w.commit([hq], {"w1.txt": {"mode": "100644", "body": ("file", "q")}},
                                   "eps")
                bases = gtfc.merge_bases(w.observer(None), probe_p, probe_q)
                if len(bases) < 2:
                    continue
                FIRED.clear()
                key = PATH.encode()
                vm = set()
                for bo in ALL_BO:
                    s = sorted(bases)
                    order = [s[i] for i in bo if i < len(s)]
                    cv = gtfc.common_versions(w.observer(("cv",) + bo), [key], order)
                    vm.add(cv[key].version)
                sidev = {gtfc.tree_versions(w.observer(None), h, [key])[key] for h in (hp, hq)}
                # no firing is possible where the sides and the bases' merge (in every
                # order, nested merges included) agree: both_from(merged) holds
                interesting = len(vm | sidev) > 1 or bool(FIRED) or bool(fired_p2)
                if not interesting and not args.all:
                    out.write(json.dumps({"p1": p1, "P": lastP, "Q": lastQ, "skipped": True,
                                          "nbases": len(bases)}) + "\n")
                    continue
                if args.prefilter_only:
                    out.write(json.dumps({"p1": p1, "P": lastP, "Q": lastQ, "skipped": False,
                                          "nbases": len(bases), "fired_p2": fired_p2,
                                          "sides": [w.version(hp), w.version(hq)],
                                          "vm": sorted(map(repr, vm))}) + "\n")
                    out.flush()
                    continue
                for p3P, p3Q in itertools.product(p3ops, repeat=2):
                    if only and not any(o[0] == list(p1) and o[1:] == [lastP, lastQ, p3P, p3Q]
                                        for o in only):
                        continue
                    model = copy.deepcopy(base_model)
                    model.known["delta"] = set(known_all)
                    model.known["eps"] = set(known_all)
                    tp, tq = hp, hq
                    for c in p3P:
                        tp = w.op(model, "delta", tp, c)
                    for c in p3Q:
                        tq = w.op(model, "eps", tq, c)
                    if tp == hp and tq == hq:
                        continue
                    if (p3P != "." and tp == hp) or (p3Q != "." and tq == hq):
                        continue    # an op that did nothing: a duplicate of "."
                    FIRED.clear()
                    nb = len(gtfc.merge_bases(w.observer(None), tp, tq))
                    bos = ALL_BO if nb == 3 else [(0, 1, 2), (1, 0, 2)] if nb == 2 else [None]
                    cache, results = {}, []
                    for bo in bos:
                        m = w.merge(tp, tq, bo)
                        problems, summary = w.check(model, m, cache)
                        results.append(["".join(map(str, bo)) if bo else "-", problems, summary])
                    n_hist += 1
                    rec = {"p1": p1, "P": lastP, "Q": lastQ, "p3P": p3P, "p3Q": p3Q,
                           "nbases": nb, "fired": len(FIRED), "fired_p2": fired_p2,
                           "fired_what": sorted({repr(f) for f in FIRED})[:3],
                           "sides": [w.version(hp), w.version(hq)],
                           "tips": [w.version(tp), w.version(tq)],
                           "vm": sorted(map(repr, vm)),
                           "bad": sum(1 for r in results if r[1]),
                           "results": results}
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
                    if args.limit and n_hist >= args.limit:
                        return
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{n_hist} histories in {time.time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
