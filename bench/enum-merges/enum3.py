"""enum2's world, another shape: each side node starts from one author's head (a
fast-forward), makes a change of its own there (pre), then merges the other
authors' heads (a fold), and acts again (post).  The sides' own changes before
the merge are what both_came_from's "came from" reads.  Prefilter as enum2's.
Usage: GTFC_PY=... python3 enum3.py OUT [--p1ops] [--pre] [--post] [--shard i/n] [--only @file]"""
import argparse, copy, itertools, json, sys, tempfile, shutil, time
import enum2
from enum2 import World, FIRED, gtfc, T, PATH, ALL_BO

AUTHORS = ("alpha", "beta", "gamma")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--p1ops", default="C,CC,E,X,XC,D")
    ap.add_argument("--authors", type=int, default=2)
    ap.add_argument("--pre", default=".,C,E,X,I")
    ap.add_argument("--post", default=".,C,E,I,D")
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--only", default=None)
    args = ap.parse_args()
    shard, shards = map(int, args.shard.split("/"))
    only = None
    if args.only:
        only = {tuple(map(lambda x: tuple(x) if isinstance(x, list) else x, o))
                for o in json.load(open(args.only[1:]))}
    authors = AUTHORS[:args.authors]
    combos = list(itertools.product(args.p1ops.split(","), repeat=len(authors)))
    combos = [c for i, c in enumerate(combos) if i % shards == shard]
    pres, posts = args.pre.split(","), args.post.split(",")
    out = open(args.out, "a")
    n, started = 0, time.time()
    for p1 in combos:
        if only and not any(o[0] == p1 for o in only):
            continue
        tmp = tempfile.mkdtemp(prefix="rv28e3-")
        try:
            w = World(tmp)
            heads = {a: w.root for a in authors}
            for step in range(max(len(s) for s in p1)):
                for a, ops in zip(authors, p1):
                    if step < len(ops):
                        heads[a] = w.op(w.model, a, heads[a], ops[step])
            snaps = {a: (heads[a], frozenset(w.model.known[a])) for a in authors}
            known_all = frozenset().union(*(s[1] for s in snaps.values()))
            for FP, FQ in itertools.product(authors, repeat=2):
                for preP, preQ in itertools.product(pres, repeat=2):
                    if (FP, preP) > (FQ, preQ):
                        continue            # the sides are symmetric but for names
                    key0 = (p1, FP, FQ, preP, preQ)
                    if only and not any(o[:5] == key0 for o in only):
                        continue
                    m2 = copy.deepcopy(w.model)
                    sides = {}
                    FIRED.clear()
                    for s, F, pre in (("delta", FP, preP), ("eps", FQ, preQ)):
                        m2.known[s] = set(snaps[F][1])
                        h = w.op(m2, s, snaps[F][0], pre)
                        if pre != "." and h == snaps[F][0]:
                            sides = None
                            break
                        for a in authors:
                            if a != F and snaps[a][0] != w.root:
                                h = w.merge(h, snaps[a][0])
                        m2.known[s] |= known_all
                        sides[s] = h
                    if not sides:
                        continue
                    fired_p2 = len(FIRED)
                    hp, hq = sides["delta"], sides["eps"]
                    if hp == hq:
                        continue
                    probe_p = w.commit([hp], {"w1.txt": {"mode": "100644", "body": ("file", "p")}}, "delta")
                    probe_q = w.commit([hq], {"w1.txt": {"mode": "100644", "body": ("file", "q")}}, "eps")
                    bases = gtfc.merge_bases(w.observer(None), probe_p, probe_q)
                    if len(bases) < 2:
                        continue
                    FIRED.clear()
                    kb = PATH.encode()
                    vm = set()
                    for bo in ALL_BO:
                        s_ = sorted(bases)
                        order = [s_[i] for i in bo if i < len(s_)]
                        vm.add(gtfc.common_versions(w.observer(("cv",) + bo), [kb], order)[kb].version)
                    sidev = {gtfc.tree_versions(w.observer(None), h, [kb])[kb] for h in (hp, hq)}
                    if not (len(vm | sidev) > 1 or FIRED or fired_p2):
                        continue
                    for postP, postQ in itertools.product(posts, repeat=2):
                        if only and (p1, FP, FQ, preP, preQ, postP, postQ) not in only:
                            continue
                        model = copy.deepcopy(m2)
                        tp, tq = hp, hq
                        for c in postP:
                            tp = w.op(model, "delta", tp, c)
                        for c in postQ:
                            tq = w.op(model, "eps", tq, c)
                        if (postP != "." and tp == hp) or (postQ != "." and tq == hq):
                            continue
                        FIRED.clear()
                        nb = len(gtfc.merge_bases(w.observer(None), tp, tq))
                        bos = ALL_BO if nb == 3 else [(0, 1, 2), (1, 0, 2)] if nb == 2 else [None]
                        cache, results = {}, []
                        for bo in bos:
                            mc = w.merge(tp, tq, bo)
                            problems, summary = w.check(model, mc, cache)
                            results.append(["".join(map(str, bo)) if bo else "-", problems, summary])
                        n += 1
                        out.write(json.dumps({
                            "key": [p1, FP, FQ, preP, preQ, postP, postQ], "nbases": nb,
                            "fired": len(FIRED), "fired_p2": fired_p2,
                            "sides": [w.version(hp), w.version(hq)],
                            "tips": [w.version(tp), w.version(tq)],
                            "bad": sum(1 for r in results if r[1]), "results": results}) + "\n")
                        out.flush()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{n} histories in {time.time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
