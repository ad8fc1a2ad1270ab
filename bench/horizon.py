#!/usr/bin/env python3
"""make horizon: a history that grew for months, then bounded (issue 15).

On the test suite's simulated cluster (3 hosts, a real sshd each), alpha's state
file is rewritten N times (100,000 by default; the history is made with git
fast-import, one version every few minutes over the last 200 days) and synced to
beta and gamma.  Then `gtfc forget --before '30 days ago'` on alpha, and a
`gtfc-pull` on each other host (what their watchers do every pull interval).
Measured, in one run:

  * .git/objects on each host before and after, and the size of the current tree
  * how long the forget took on alpha, and each host's pull that drops history
  * that every kept commit keeps its id and every host ends on one commit
  * propagation (gtfc-watch on two hosts: write -> visible), median of 15, before
    and after, side by side; and a concurrent edit on two hosts that merges

Objects are pruned at once here (gtfc.pruneAfter = now: nothing is in flight in
this run); by default gtfc waits an hour for objects written in the last hour.
Prints a markdown table.  Needs Linux and root, as the cluster tests do.

    python3 bench/horizon.py          # N=100000, about 3 minutes
    N=20000 python3 bench/horizon.py
"""

import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("GTFC_TEST_NET", "127.0.201")
from test_gtfc import GTFC_PY, USER_HOME, Cluster, wait_until  # noqa: E402

N = int(os.environ.get("N", 100_000))
HOSTS = ("alpha", "beta", "gamma")
DAY = 86400


def say(message: str) -> None:
    print(f"[horizon] {message}", file=sys.stderr, flush=True)


def objects_bytes(c: Cluster, host: str) -> int:
    total = 0
    for folder, _, names in os.walk(c.path(host, "state/.git/objects")):
        total += sum(os.lstat(os.path.join(folder, n)).st_size for n in names)
    return total


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def fast_import_stream(parent: str, now: int) -> bytes:
    """N versions of state.txt, a small config-like state file whose counters
    change each time, one every 200 days / N, ending a day ago."""
    step = 200 * DAY / N
    first = now - DAY - 200 * DAY
    out = []
    for i in range(N):
        when = int(first + i * step)
        body = "".join(f"sensor{j:02d} = {(i * 7919 + j * 104729) % 100_003}\n"
                       for j in range(24)) + f"updated = {when}\nsequence = {i}\n"
        data = body.encode()
        message = f"state {i}\n".encode()
        out.append(b"commit refs/heads/main\n")
        out.append(f"author alpha <gtfc@alpha> {when} +0000\n"
                   f"committer alpha <gtfc@alpha> {when} +0000\n".encode())
        out.append(b"data %d\n%s" % (len(message), message))
        if i == 0:
            out.append(f"from {parent}\n".encode())
        out.append(b"M 100644 inline state.txt\n")
        out.append(b"data %d\n%s\n" % (len(data), data))
    return b"".join(out)


def propagation(c: Cluster, n: int, tag: str) -> list:
    """Write on alpha, until beta shows it: n samples (both run gtfc-watch)."""
    samples = []
    for i in range(n):
        text = f"{tag} {i}\n"
        path = c.path("beta", "state/probe.txt")
        started = time.monotonic()
        c.write("alpha", "state/probe.txt", text)

        def arrived():
            try:
                with open(path) as f:
                    return f.read() == text
            except OSError:
                return False
        wait_until(arrived, timeout=30, interval=0.002, what=f"probe {i} on beta")
        samples.append(time.monotonic() - started)
        time.sleep(0.3)
    return samples


def watched_propagation(c: Cluster, tag: str) -> list:
    """propagation with gtfc-watch running on alpha and beta for it."""
    watchers = [c.spawn(h, ["gtfc-watch", f"{USER_HOME}/state"]) for h in ("alpha", "beta")]
    time.sleep(10)                      # past the watchers' start-up checks
    try:
        return propagation(c, 15, tag)
    finally:
        for w in watchers:
            w.terminate()
            w.wait(30)


def main() -> int:
    rows = []
    with Cluster(HOSTS, gtfc_py=GTFC_PY) as c:
        def git(host, *args, **kw):
            return c.run(host, ["git", "-C", "state", *args], timeout=3600, **kw).stdout.strip()

        def gtfc(host, *args):
            return c.run(host, ["gtfc", *args], timeout=3600, check=False)

        c.ssh_operator("alpha", "gtfc-bootstrap ~/state", forward_agent=False)
        for host in HOSTS[1:]:
            c.ssh_operator(host, "gtfc-join alpha ~/state")
        say(f"importing {N} versions of state.txt on alpha")
        started = time.monotonic()
        with open(c.path("alpha", "import.stream"), "wb") as f:
            f.write(fast_import_stream(git("alpha", "rev-parse", "HEAD"), int(time.time())))
        c.run("alpha", ["sh", "-c", "git -C state fast-import --quiet < import.stream"],
              timeout=3600)
        git("alpha", "read-tree", "-u", "--reset", "HEAD")
        git("alpha", "gc", "--quiet")
        say(f"imported in {time.monotonic() - started:.1f} s; sending")
        started = time.monotonic()
        gtfc("alpha", "push", "state")
        for host in HOSTS[1:] + HOSTS:                  # each hears of each
            gtfc(host, "pull", "state")
        sent = time.monotonic() - started
        for host in HOSTS:
            git(host, "config", "gtfc.pruneAfter", "now")
            git(host, "gc", "--quiet")                  # as git's upkeep would have
        before = {h: objects_bytes(c, h) for h in HOSTS}
        commits_before = int(git("alpha", "rev-list", "--count", "HEAD"))
        tree = sum(int(line.split()[3]) for line in git(
            "alpha", "ls-tree", "-r", "-l", "HEAD").splitlines() if line.split()[3] != "-")
        cutoff = int(time.time()) - 30 * DAY
        kept_before = git("alpha", "rev-list", f"--since={cutoff}", "HEAD").split()

        prop_before = watched_propagation(c, "before")

        say("gtfc forget --before '30 days ago' on alpha")
        started = time.monotonic()
        r = gtfc("alpha", "forget", "--before", "30 days ago", "state")
        took = {"alpha": time.monotonic() - started}
        print(r.stdout, r.stderr, file=sys.stderr)
        for host in HOSTS[1:]:
            started = time.monotonic()
            gtfc(host, "pull", "state")
            took[host] = time.monotonic() - started
        after = {h: objects_bytes(c, h) for h in HOSTS}
        heads = {git(h, "rev-parse", "HEAD") for h in HOSTS}
        horizons = {c.read(h, "state/.git/shallow").strip() for h in HOSTS}
        kept_after = git("alpha", "rev-list", "HEAD").split()
        ids_kept = set(kept_before) <= set(kept_after)

        prop_after = watched_propagation(c, "after")
        c.write("beta", "state/from-beta.txt", "beta\n")
        c.write("gamma", "state/from-gamma.txt", "gamma\n")
        gtfc("beta", "push", "state")
        gtfc("gamma", "push", "state")
        for host in HOSTS:
            gtfc(host, "pull", "state")
        merged = len({git(h, "rev-parse", "HEAD") for h in HOSTS}) == 1 and \
            all(os.path.exists(c.path(h, "state/from-beta.txt")) and
                os.path.exists(c.path(h, "state/from-gamma.txt")) for h in HOSTS)

        rows.append(f"| commits | {commits_before} | {len(kept_after)} (kept: those of the "
                    f"last 30 days, {len(kept_before)}, ids unchanged: {ids_kept}) |")
        for h in HOSTS:
            rows.append(f"| {h}: .git/objects | {mib(before[h])} | {mib(after[h])} "
                        f"({'the forget' if h == 'alpha' else 'the pull after'} took "
                        f"{took.get(h, 0):.1f} s) |")
        rows.append(f"| current tree | {tree / 1024:.1f} KiB | |")
        rows.append(f"| one commit and one horizon everywhere | {len(heads) == 1} | "
                    f"{len(heads) == 1 and len(horizons) == 1} |")
        rows.append(f"| propagation alpha -> beta, median of 15 | "
                    f"{statistics.median(prop_before) * 1000:.0f} ms | "
                    f"{statistics.median(prop_after) * 1000:.0f} ms |")
        rows.append(f"| a concurrent edit on two hosts merges everywhere | | {merged} |")
        rows.append(f"| history sent to 2 peers (push + pulls) | {sent:.1f} s | |")
    print(f"\n{N} versions of a 0.5 KiB state file over 200 days, then "
          "`gtfc forget --before '30 days ago'`:\n")
    print("| | before | after |\n| --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
