"""Draft vs 78b4ef5 on the same histories: model failures on each, and tip
versions (or tip bodies / bits) that 78b4ef5's merge keeps in some file and the
draft's does not (same merge-base order)."""
import json, sys, collections, re
def norm(x):
    return re.sub(r"^(alpha|beta|gamma|delta|eps)-\d+$", r"\1-T", x) if isinstance(x, str) else x
def normr(r):
    r["tips"] = [t and [t[0], norm(t[1])] for t in r["tips"]]
    r["sides"] = [t and [t[0], norm(t[1])] for t in r["sides"]]
    for x in r["results"]:
        x[2] = [[k, m, norm(b)] for k, m, b in x[2]]
    return r

def load(fn, keyf):
    out = {}
    for l in open(fn):
        r = json.loads(l)
        if r.get("skipped"): continue
        out[keyf(r)] = normr(r)
    return out

def key2(r):
    return json.dumps(r.get("key") or [r["p1"], r["P"], r["Q"], r["p3P"], r["p3Q"]])

draft = {}; base = {}
for fn in sys.argv[1].split(","): draft.update(load(fn, key2))
for fn in sys.argv[2].split(","): base.update(load(fn, key2))
c = collections.Counter()
for k, b in base.items():
    d = draft.get(k)
    if d is None: c["missing-in-draft"] += 1; continue
    c["compared"] += 1
    if d["tips"] != b["tips"]: c["tips-differ(history differs)"] += 1
    db, bb = d["bad"] > 0, b["bad"] > 0
    c[f"bad draft={db} base={bb}"] += 1
    dres = {x[0]: x for x in d["results"]}; bres = {x[0]: x for x in b["results"]}
    same = all(dres[bo][2] == bres[bo][2] for bo in bres if bo in dres)
    c["same results" if same else "results differ"] += 1
    lost = []
    for bo, bx in bres.items():
        dx = dres.get(bo)
        if not dx: continue
        dheld = {(m, body) for _, m, body in dx[2]}; bheld = {(m, body) for _, m, body in bx[2]}
        for t in d["tips"]:
            if t and tuple(t) in bheld and tuple(t) not in dheld:
                lost.append((bo, tuple(t), "whole"))
        dbody = {body for _, _, body in dx[2]}; bbody = {body for _, _, body in bx[2]}
        for t in d["tips"]:
            if t and t[1] in bbody and t[1] not in dbody:
                lost.append((bo, tuple(t), "body"))
    lost = [l for l in lost if l[2] == "body"] if "--body" in sys.argv else lost
    if lost:
        c["draft drops a tip version 78b4ef5 keeps"] += 1
        if "-v" in sys.argv:
            print(k, "sides", d["sides"], "tips", d["tips"])
            print("   draft:", sorted({tuple(map(tuple, x[2])) for x in d["results"]}))
            print("   base :", sorted({tuple(map(tuple, x[2])) for x in b["results"]}))
            print("   lost :", sorted(set(lost))[:4])
    if db and not bb:
        print("DRAFT-ONLY MODEL FAILURE", k, [x[:2] for x in d["results"] if x[1]])
print(c)
