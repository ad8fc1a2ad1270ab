#!/usr/bin/env python3
"""make bench: gtfc side by side with lsyncd+rsync, Unison and Syncthing, in one run.

Builds the test suite's simulated cluster (test_gtfc.Cluster: every host a Linux
mount + UTS namespace with its own sshd on a loopback address, user gtfcuser), 9
hosts on its own network 127.0.200.0/24 (GTFC_TEST_NET), and measures in turn:

  raw       `ssh host true` and `git push` of a one-file commit, new connection
            and reused (ControlMaster): what the hardware allows
  bulk      rsync -a over ssh and Unison's first sync of a 10,000-file tree, then
            gtfc-join of a peer holding the same files
  noop      gtfc-push with nothing new (and whether it opened a connection)
  prop      both hosts running gtfc-watch on that repo: write on A -> the right
            content visible on B, both ways; then a burst of 1,000 new files
  lsyncd    the same write -> visible with lsyncd + rsync over ssh at delay 0,
            with a new and with a reused ssh connection
  periodic  Unison -repeat 1 over ssh; Syncthing at watcher delay 1 s and 10 s
            (its default); lsyncd at its default delay, 15 s, beside them
  fanout    one repo first on 2 hosts, then on all 9: write on A -> on every peer
  scale     a 100,000-file repo: watcher start, RSS, idle CPU, propagation

Every anchor syncs a plain copy of the same tree from alpha to beta over the same
sshds, with an ordinary ssh key.  A failed measurement is reported in the table's
notes and the others go on.

and prints one markdown table (also written to bench/results.md, or
bench/results-quick.md in quick mode) with gtfc / anchor ratios and the targets of
issue 6.  Progress goes to stderr.

    python3 bench/bench_gtfc.py            # full run, n = 30, about 8 minutes
    QUICK=1 python3 bench/bench_gtfc.py    # fewer samples, smaller scale, < 3 minutes
    BENCH_ONLY=raw,prop python3 bench/bench_gtfc.py   # some phases (development)

Needs Linux, root, openssh-server and git; installs lsyncd, rsync, unison and
syncthing with apt-get if missing.  Traffic stays on 127.0.200.x; everything the
bench starts runs inside the cluster's namespaces and dies with it.
"""

import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# Our own /24, so that a bench never collides with someone's test run.
os.environ.setdefault("GTFC_TEST_NET", "127.0.200")
import test_gtfc  # noqa: E402
from test_gtfc import GTFC_PY, USER_HOME, Cluster, wait_until  # noqa: E402

QUICK = os.environ.get("QUICK", "") not in ("", "0")
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
N = 10 if QUICK else 30                  # samples of each fast measurement
N_SLOW = 2 if QUICK else 5               # samples of the 10-15 s anchors
N_ST10 = 1 if QUICK else N_SLOW          # Syncthing at 10 s: the long pole in QUICK
N_ST = 5 if QUICK else N                 # Syncthing at 1 s: about 1 s each
N_FAN = 5 if QUICK else N                # fan-out: 8 receivers, a second each
N_SCALE = 6 if QUICK else N
N_BACK = 3 if QUICK else 10              # the other way, B -> A
RSYNC_RUNS = 1 if QUICK else 3
TREE_FILES = 10_000
SCALE_FILES = 20_000 if QUICK else 100_000
FAN_FILES = 1_000 if QUICK else TREE_FILES
BURST_FILES = 1_000
IDLE_WINDOW = 3.0 if QUICK else 10.0
POLL = 0.002                             # arrival polling interval, seconds
GTFC_GAP = 0.5      # between gtfc samples: the receiver's background work must end
GAPS = random.Random(6)                  # the anchors' random pauses, the same each run
HOSTS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota")
A, B = "alpha", "beta"
BENCH_KEY = f"{USER_HOME}/.ssh/bench_ed25519"   # a plain (non-forced) key, for the anchors
PLAIN_SSH = ["ssh", "-i", BENCH_KEY, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
MUX_SSH = PLAIN_SSH + ["-o", "ControlMaster=auto", "-o", "ControlPath=/tmp/bench-cm-%C",
                       "-o", "ControlPersist=600"]
STARTED = time.monotonic()


def say(message: str) -> None:
    # One write per line: the lsyncd thread reports too.
    sys.stderr.write(f"[bench {time.monotonic() - STARTED:6.1f}s] {message}\n")
    sys.stderr.flush()


# Statistics and formatting ###################################################

def p90(samples: List[float]) -> float:
    ordered = sorted(samples)
    return ordered[int(0.9 * (len(ordered) - 1))]   # nearest rank, as make latency


def fmt_time(seconds: float) -> str:
    if seconds < 0.0995:
        return f"{seconds * 1000:.1f} ms" if seconds < 0.01 else f"{seconds * 1000:.0f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def fmt_samples(samples: Optional[List[float]]) -> str:
    if not samples:
        return "—"
    if len(samples) < 5:        # p90 of a handful of samples means nothing
        return f"{fmt_time(statistics.median(samples))} (n={len(samples)})"
    return f"{fmt_time(statistics.median(samples))} / {fmt_time(p90(samples))}"


def fmt_ratio(ours: Optional[List[float]], theirs: Optional[List[float]]) -> str:
    if not ours or not theirs:
        return "—"
    ratio = statistics.median(ours) / statistics.median(theirs)
    return f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.3f}×"


# Results: filled by the phases, rendered at the end ###########################

@dataclass
class Row:
    what: str
    gtfc: str = "—"
    anchor: str = "—"
    anchor_value: str = "—"
    ratio: str = "—"
    target: str = ""


@dataclass
class Results:
    samples: Dict[str, List[float]] = field(default_factory=dict)
    values: Dict[str, object] = field(default_factory=dict)
    failures: Dict[str, str] = field(default_factory=dict)


R = Results()


def measure(name: str, step: Callable[[], None]) -> None:
    """Run one measurement; a failure is recorded and shown in the table, and the
    bench goes on with the others (one broken anchor must not hide the rest)."""
    if ONLY and name.split(".")[0] not in ONLY:     # "phase.part" runs with its phase
        return
    say(f"-- {name}")
    try:
        step()
    except Exception as e:      # noqa: BLE001 — reported in the table
        message = str(e).strip().splitlines()
        R.failures[name] = (message[0] if message else repr(e))[:200]
        say(f"!! {name} failed: {e}")


# Machine and tools ############################################################

def ensure_tools() -> None:
    """apt-get install what the anchors need, once (apt-get update only if needed)."""
    wanted = {"lsyncd": "lsyncd", "rsync": "rsync", "unison": "unison",
              "syncthing": "syncthing"}
    missing = [pkg for tool, pkg in wanted.items() if not shutil.which(tool)]
    if not missing:
        return
    say(f"installing {' '.join(missing)} (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    argv = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(argv, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        subprocess.run(argv, env=env, capture_output=True, check=True)


def first_line(argv: List[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    return ((proc.stdout or proc.stderr).strip().splitlines() or ["?"])[0]


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = open("/proc/loadavg").read().split()[:3]
    host_python = shutil.which("python3", path=test_gtfc.SYSTEM_PATH) or "python3"
    gtfc_rev = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %cs", "--", "gtfc.py"],
                              capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "gtfc.py"],
                           capture_output=True, text=True).stdout.strip()
    return "\n".join([
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"mode: {'QUICK (fewer samples, smaller scale)' if QUICK else 'full'}; "
        f"load average at start {' '.join(load)}",
        f"- machine: {os.cpu_count()} CPUs ({model}), kernel {os.uname().release}, "
        f"{first_line(['cat', '/etc/debian_version']) and 'Debian ' + first_line(['cat', '/etc/debian_version'])}",
        f"- gtfc.py: {gtfc_rev or '?'}{' + uncommitted changes' if dirty else ''}; "
        f"{first_line([host_python, '-V'])} ({host_python}, what the hosts run gtfc with), "
        f"{first_line(['git', '--version'])}, {first_line(['ssh', '-V'])}",
        f"- anchors: lsyncd {first_line(['lsyncd', '--version']).replace('Version: ', '')}, "
        f"{' '.join(first_line(['rsync', '--version']).split()[:3])}, "
        f"{' '.join(first_line(['unison', '-version']).split()[:3])}, "
        f"{' '.join(first_line(['syncthing', '--version']).split()[:2])}",
    ])


# Running things on hosts ######################################################

# Runs inside a host as gtfcuser: N small text files in 100-file folders,
# DIR/dNNN/eN/fNNNNNN.txt (10,000 files: 111 folders; 100,000: 1,101).
GEN_TREE = r"""
import os, sys
root, count, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(count):
    folder = os.path.join(root, f"d{i // 1000:03d}", f"e{i // 100 % 10}")
    if i % 100 == 0:
        os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"f{i:06d}.txt"), "w") as f:
        f.write(f"{tag} file {i}\n" + "some line of text in a small config file\n" * 3)
"""

# Runs inside a host as gtfcuser: time `argv` n times (after `prep` each time,
# untimed), so that nsenter/setpriv's own start-up is not in the figures.
TIME_LOOP = r"""
import json, subprocess, sys, time
spec = json.loads(sys.argv[1])
env = dict(__import__("os").environ, **spec.get("env", {}))
def run(argv, i):
    subprocess.run([a.replace("{i}", str(i)) for a in argv], check=True, env=env,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
for i in range(spec.get("warmup", 0)):
    run(spec["argv"], -1 - i)
samples = []
for i in range(spec["n"]):
    if spec.get("prep"):
        run(spec["prep"], i)
    started = time.monotonic()
    run(spec["argv"], i)
    samples.append(time.monotonic() - started)
print(json.dumps(samples))
"""


def time_in_host(c: Cluster, host: str, argv: List[str], n: int, *, prep=None,
                 warmup: int = 0, env=None, cwd=None, timeout: int = 600) -> List[float]:
    spec = {"argv": argv, "n": n, "prep": prep, "warmup": warmup, "env": env or {}}
    out = c.run(host, ["python3", "-c", TIME_LOOP, json.dumps(spec)], cwd=cwd,
                timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


def timed(step: Callable[[], object]) -> float:
    started = time.monotonic()
    step()
    return time.monotonic() - started


def make_tree(c: Cluster, host: str, rel: str, count: int, tag: str = "bench") -> None:
    c.run(host, ["python3", "-c", GEN_TREE, rel, str(count), tag], timeout=1800)


def has_content(path: str, text: str) -> bool:
    try:
        with open(path) as f:
            return f.read() == text
    except OSError:
        return False


_writes = 0


def write_probe(c: Cluster, host: str, rel: str, text: str) -> None:
    """Rewrite rel in place, as gtfcuser's editor would.  Only a new file is
    chowned: a chown is one more inotify event (IN_ATTRIB), which lsyncd at delay 0
    answers with a second rsync that would then carry the next sample early."""
    path = c.path(host, rel)
    if not os.path.exists(path):
        c.write(host, rel, text)
        return
    with open(path, "w") as f:
        f.write(text)


def propagate(c: Cluster, writer: str, rel: str, readers: Dict[str, str], tag: str,
              timeout: float = 60) -> Dict[str, float]:
    """Write a new content to writer's rel; seconds until each reader host shows it
    at its own path.  Polled from outside the hosts every POLL seconds."""
    # The size changes at every write: rsync's quick check (size + mtime to the
    # second) would skip a same-size edit made within the same second as the last.
    global _writes
    _writes += 1
    text = f"{tag} {time.time_ns()}\n" + "." * (_writes % 2)
    paths = {host: c.path(host, path) for host, path in readers.items()}
    started = time.monotonic()
    write_probe(c, writer, rel, text)
    arrived: Dict[str, float] = {}
    deadline = started + timeout
    while len(arrived) < len(paths):
        for host, path in paths.items():
            if host not in arrived and has_content(path, text):
                arrived[host] = time.monotonic() - started
        if time.monotonic() > deadline:
            missing = sorted(set(paths) - set(arrived))
            raise AssertionError(f"{tag}: not on {', '.join(missing)} after {timeout:.0f} s")
        time.sleep(POLL)
    return arrived


def propagation_samples(c, writer, rel, reader, reader_rel, n, tag, gap=None,
                        timeout=60, warmup=True) -> List[float]:
    """n timed writes of rel on writer, each waited for on reader, after one untimed
    warm-up write (it creates the file, and opens whatever connection is reused).

    gap=None: a random pause of 0.2-1.2 s between writes, so that a tool that
    works in rounds (Unison -repeat 1, Syncthing's watcher delay) is sampled at
    every phase of its round rather than locked to one."""
    if warmup:
        propagate(c, writer, rel, {reader: reader_rel}, f"{tag}-warmup", timeout=timeout)
    samples = []
    for i in range(n):
        time.sleep(GAPS.uniform(0.2, 1.2) if gap is None else gap)
        samples.append(propagate(c, writer, rel, {reader: reader_rel}, f"{tag}-{i:04d}",
                                 timeout=timeout)[reader])
    time.sleep(0.2 if gap is None else gap)
    return samples


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM a process the bench spawned on a host (and its group); SIGKILL if slow."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def log_text(proc) -> str:
    with open(proc.log_path, errors="replace") as f:
        return f.read()


def wait_log(proc, pattern: str, timeout: float, what: str) -> None:
    def seen():
        if proc.poll() is not None:
            raise AssertionError(f"{what}: exited {proc.returncode}: {log_text(proc)[-500:]}")
        return re.search(pattern, log_text(proc))
    wait_until(seen, timeout=timeout, interval=0.05, what=what)


def accepted_logins(c: Cluster, host: str) -> int:
    return c.read_log(host).count("Accepted publickey")


# Processes: RSS and CPU from /proc ############################################

CLK_TCK = os.sysconf("SC_CLK_TCK")


def status_field(pid: int, name: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """utime+stime of pid and of its children it has reaped (git, ssh)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK     # utime stime cutime cstime


def wakeups(pid: int) -> int:
    """Context switches of every thread of pid: each is a wake-up or a preemption."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += status_field(int(tid), "voluntary_ctxt_switches")
            total += status_field(int(tid), "nonvoluntary_ctxt_switches")
        except OSError:
            pass
    return total


def inotify_watches(pid: int) -> int:
    """Number of inotify watches pid holds (from /proc/PID/fdinfo)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                count += sum(1 for line in f if line.startswith("inotify wd:"))
        except OSError:
            pass
    return count


def count_dirs(top: str) -> int:
    """Folders under top, top included, .git not."""
    count = 0
    for _, dirs, _ in os.walk(top):
        dirs[:] = [d for d in dirs if d != ".git"]
        count += 1
    return count


# gtfc #########################################################################

def bootstrap(c: Cluster, host: str, repo: str) -> None:
    c.ssh_operator(host, f"gtfc-bootstrap ~/{repo}", forward_agent=False, timeout=1800)


def join(c: Cluster, host: str, via: str, repo: str) -> None:
    c.ssh_operator(host, f"gtfc-join {via} ~/{repo}", timeout=1800)


def watch(c: Cluster, host: str, repo: str) -> subprocess.Popen:
    return c.spawn(host, ["gtfc-watch", f"{USER_HOME}/{repo}", "-v"])


def head(c: Cluster, host: str, repo: str) -> str:
    return c.run(host, ["git", "-C", repo, "rev-parse", "HEAD"]).stdout.strip()


def wait_watching(c: Cluster, procs: Dict[str, subprocess.Popen], repo: str) -> None:
    """Until every watcher runs and all are on one commit (their start-up fetch done)."""
    for host, proc in procs.items():
        wait_log(proc, r"watching", timeout=300, what=f"gtfc-watch on {host}")
    wait_until(lambda: len({head(c, h, repo) for h in procs}) == 1, timeout=120,
               interval=0.2, what=f"{repo} converged")
    time.sleep(1.0)


def ssh_masters(c: Cluster, host: str, to: str) -> List[int]:
    """gtfc's ssh connection masters on host to host `to` (ssh processes whose
    parent is gone, with USER@to in their command line)."""
    namespace = test_gtfc._namespace_of(c._holders[host].pid)
    pids = []
    for pid in test_gtfc._all_pids():
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "ssh":
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            if test_gtfc._namespace_of(pid) == namespace and \
                    status_field(pid, "PPid") == 1 and f"@{to}\0" in cmdline:
                pids.append(pid)
        except (OSError, ValueError):
            pass
    return pids


def busy_processes(c: Cluster, hosts, keep=()) -> List[str]:
    """What runs on hosts besides sshd, the holder, ssh connection masters and keep."""
    namespaces = {test_gtfc._namespace_of(c._holders[h].pid) for h in hosts}
    busy = []
    for pid in test_gtfc._all_pids():
        if pid in keep or test_gtfc._namespace_of(pid) not in namespaces:
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            if comm in ("sshd", "sleep") or (comm == "ssh" and status_field(pid, "PPid") == 1):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                busy.append(f.read().replace(b"\0", b" ").decode(errors="replace")[:80])
        except OSError:
            pass
    return busy


def wait_quiet(c: Cluster, hosts, keep=(), timeout: float = 120) -> None:
    """Until gtfc's background work on hosts (integrations after a push) is over,
    so that it does not slow the next measurement."""
    wait_until(lambda: not busy_processes(c, hosts, keep), timeout=timeout, interval=0.1,
               what=f"nothing running on {', '.join(hosts)}")


# Phases #######################################################################

def phase_raw(c: Cluster) -> None:
    """ssh and git push alone, from alpha to beta with a plain key."""
    R.samples["ssh.new"] = time_in_host(c, A, PLAIN_SSH + [B, "true"], N)
    R.samples["ssh.reused"] = time_in_host(c, A, MUX_SSH + [B, "true"], N, warmup=1)
    c.run(B, ["git", "init", "-q", "--bare", "plain.git"])
    c.run(A, ["git", "init", "-q", "-b", "main", "plain"])
    commit = ["sh", "-c", "echo {i} > f && git add f && git -c user.name=b -c "
              "user.email=b@b commit -qm {i}"]
    url = f"ssh://{B}{USER_HOME}/plain.git"
    push = ["git", "push", "-q", url, "HEAD:main"]
    R.samples["push.new"] = time_in_host(
        c, A, push, N, prep=commit, warmup=0, cwd=f"{USER_HOME}/plain",
        env={"GIT_SSH_COMMAND": " ".join(PLAIN_SSH)})
    R.samples["push.reused"] = time_in_host(
        c, A, push, N, prep=commit, cwd=f"{USER_HOME}/plain",
        env={"GIT_SSH_COMMAND": " ".join(MUX_SSH)})


def phase_bulk(c: Cluster) -> None:
    """A peer joins a repo of 10,000 small files; rsync -a and Unison copy the tree."""
    rsync = ["rsync", "-a", "--exclude=.git", "-e", " ".join(PLAIN_SSH)]
    samples = []
    for i in range(RSYNC_RUNS):     # the last copy stays: lsyncd's target, pre-seeded
        target = "tree-lsyncd" if i == RSYNC_RUNS - 1 else f"rsync-copy{i}"
        samples.append(timed(lambda: c.run(B, rsync + [f"{A}:tree/", f"{target}/"],
                                           timeout=600)))
    R.samples["bulk.rsync"] = samples
    R.samples["bulk.unison"] = [timed(lambda: unison(c, ["-batch"]))]
    R.values["join"] = [timed(lambda: join(c, B, A, "prop"))]
    wait_quiet(c, (A, B))


def phase_noop(c: Cluster) -> None:
    push = ["gtfc-push", f"{USER_HOME}/prop"]
    c.run(A, push)      # the first may have something to send (join's records)
    before = accepted_logins(c, B)
    R.samples["noop"] = time_in_host(c, A, push, N)
    R.values["noop.logins"] = accepted_logins(c, B) - before


def phase_prop(c: Cluster) -> None:
    procs = {h: watch(c, h, "prop") for h in (A, B)}
    try:
        wait_watching(c, procs, "prop")
        R.samples["prop"] = propagation_samples(c, A, "prop/probe.txt", B, "prop/probe.txt",
                                                N, "prop", gap=GTFC_GAP)
        R.values["prop.rss"] = status_field(procs[A].pid, "VmRSS")
        R.samples["prop.back"] = propagation_samples(c, B, "prop/back.txt", A,
                                                     "prop/back.txt", N_BACK, "back",
                                                     gap=GTFC_GAP)
        measure("prop.burst", lambda: burst(c))
        say("   alpha's watcher log ends:\n" + "\n".join(log_text(procs[A]).splitlines()[-4:]))
    finally:
        for proc in procs.values():
            stop(proc)


def burst(c: Cluster) -> None:
    """1,000 new files written on A as fast as Python can; seconds until all are on B."""
    texts = {f"prop/burst/b{i:04d}.txt": f"burst {i} {time.time_ns()}\n"
             for i in range(BURST_FILES)}
    started = time.monotonic()
    for rel, text in texts.items():
        c.write(A, rel, text)
    written = time.monotonic() - started
    pending = list(texts.items())
    while pending:
        # Files arrive in one commit; check the first missing one, then move on.
        while pending and has_content(c.path(B, pending[0][0]), pending[0][1]):
            pending.pop(0)
        if time.monotonic() - started > 120:
            raise AssertionError(f"burst: {len(pending)} files still missing on beta")
        time.sleep(0.005)
    R.samples["burst"] = [time.monotonic() - started]
    R.values["burst.write"] = written


def phase_fanout(c: Cluster) -> None:
    """One repo, first on 2 hosts, then on 9: write on alpha, time until the last
    peer has it.  The 1-peer figure comes from the same repo in the same run."""
    if FAN_FILES == TREE_FILES:
        c.run(A, ["cp", "-a", "tree", "fan"])
    else:
        make_tree(c, A, "fan", FAN_FILES)
    bootstrap(c, A, "fan")
    joins = [timed(lambda: join(c, B, A, "fan"))]
    wait_quiet(c, HOSTS[:2])
    R.samples["fan.one"] = [max(t) for t in fan_samples(c, HOSTS[:2])]
    for host in HOSTS[2:]:
        joins.append(timed(lambda: join(c, host, A, "fan")))
        say(f"   {host} joined fan in {fmt_time(joins[-1])}")
        # Each join timed on its own, not slowed by the last one's background work
        # (back to back, they take twice as long in all).
        wait_quiet(c, HOSTS[:HOSTS.index(host) + 1])
    R.samples["fan.join"] = joins
    arrivals = fan_samples(c, HOSTS)
    R.samples["fan.first"] = [min(t) for t in arrivals]
    R.samples["fan.last"] = [max(t) for t in arrivals]


def fan_samples(c: Cluster, hosts) -> List[List[float]]:
    """gtfc-watch on hosts; N writes on alpha: for each, every peer's arrival time."""
    procs = {h: watch(c, h, "fan") for h in hosts}
    try:
        wait_watching(c, procs, "fan")
        readers = {h: "fan/probe.txt" for h in hosts[1:]}
        propagate(c, A, "fan/probe.txt", readers, f"fan{len(hosts)}-warmup")
        time.sleep(1.0)
        samples = []
        for i in range(N_FAN):
            arrived = propagate(c, A, "fan/probe.txt", readers, f"fan{len(hosts)}-{i:04d}")
            samples.append(list(arrived.values()))
            time.sleep(GTFC_GAP if len(hosts) < 3 else 1.0)  # let every receiver finish
        return samples
    finally:
        for proc in procs.values():
            stop(proc)


def phase_scale(c: Cluster) -> None:
    """A big repo: watcher start, memory, idle CPU and propagation."""
    say(f"   making a {SCALE_FILES:,}-file tree, bootstrapping and joining it")
    R.values["scale.make"] = timed(lambda: make_tree(c, A, "big", SCALE_FILES))
    R.values["scale.bootstrap"] = timed(lambda: bootstrap(c, A, "big"))
    R.values["scale.join"] = timed(lambda: join(c, B, A, "big"))
    wait_quiet(c, (A, B))
    say(f"   bootstrap {fmt_time(R.values['scale.bootstrap'])}, "
        f"join {fmt_time(R.values['scale.join'])}")
    dirs = count_dirs(c.path(A, "big"))
    receiver = watch(c, B, "big")
    wait_log(receiver, r"watching", timeout=300, what="gtfc-watch on beta")
    time.sleep(1.0)
    # Start alpha's watcher and write at once: "ready" is when that write is on beta,
    # "watches set" when the watcher holds a watch on every folder.
    text = f"start {time.time_ns()}\n"
    started = time.monotonic()
    sender = watch(c, A, "big")
    c.write(A, "big/probe.txt", text)
    watches_set = ready = None
    try:
        while ready is None or watches_set is None:
            now = time.monotonic() - started
            if watches_set is None and sender.poll() is None and \
                    inotify_watches(sender.pid) >= dirs:
                watches_set = now
            if ready is None and has_content(c.path(B, "big/probe.txt"), text):
                ready = now
            if now > 300:
                raise AssertionError(f"watcher start: watches {inotify_watches(sender.pid)} "
                                     f"of {dirs} folders, probe arrived: {ready}")
            time.sleep(0.01)
        R.values["scale.watches"] = watches_set
        R.values["scale.ready"] = ready
        R.values["scale.dirs"] = dirs
        wait_watching(c, {A: sender, B: receiver}, "big")
        R.values["scale.rss"] = status_field(sender.pid, "VmRSS")
        cpu, wake = cpu_seconds(sender.pid), wakeups(sender.pid)
        time.sleep(IDLE_WINDOW)
        R.values["scale.idle_cpu"] = cpu_seconds(sender.pid) - cpu
        R.values["scale.idle_wakeups"] = wakeups(sender.pid) - wake
        R.samples["scale.prop"] = propagation_samples(c, A, "big/probe.txt", B,
                                                      "big/probe.txt", N_SCALE, "scale",
                                                      gap=GTFC_GAP)
        R.values["scale.hwm"] = status_field(sender.pid, "VmHWM")
        masters = ssh_masters(c, A, B)
        R.values["scale.masters"] = (len(masters),
                                     sum(status_field(p, "VmRSS") for p in masters))
    finally:
        stop(sender)
        stop(receiver)


# Anchors ######################################################################

def lsyncd(c: Cluster, source: str, target: str, delay: int, reuse: bool, tag: str,
           n: int) -> List[float]:
    """lsyncd + rsync over ssh (default.rsync), alpha:~/SOURCE -> beta:~/TARGET, which
    holds a copy already (rsync -a), as after lsyncd's own start-up sync."""
    rsh = " ".join(MUX_SSH if reuse else PLAIN_SSH)
    config = (f'settings {{ nodaemon = true }}\n'
              f'sync {{ default.rsync, source = "{USER_HOME}/{source}/", '
              f'target = "{B}:{USER_HOME}/{target}/", delay = {delay}, '
              f'rsync = {{ archive = true, rsh = "{rsh}" }} }}\n')
    c.write(A, f"lsyncd-{tag}.lua", config)
    proc = c.spawn(A, ["lsyncd", f"{USER_HOME}/lsyncd-{tag}.lua"])
    try:
        # Its start-up rsync of the whole tree must be over first.
        wait_log(proc, r"Startup of .* finished", timeout=120, what=f"lsyncd ({tag}) start-up")
        # At 15 s a warm-up write would cost 15 s: its first sample creates the file.
        return propagation_samples(c, A, f"{source}/probe-{tag}.txt", B,
                                   f"{target}/probe-{tag}.txt", n, tag, timeout=delay + 60,
                                   warmup=delay < 5, gap=0.3 if delay < 5 else None)
    finally:
        stop(proc)


def phase_lsyncd_fast(c: Cluster) -> None:
    R.samples["lsyncd.0"] = lsyncd(c, "tree", "tree-lsyncd", 0, False, "lsyncd0", N)
    R.samples["lsyncd.0.reused"] = lsyncd(c, "tree", "tree-lsyncd", 0, True, "lsyncd0r", N)


def phase_periodic(c: Cluster) -> None:
    """The tools that work on timers or in rounds.  lsyncd at its 15 s default runs
    in a thread beside Unison and Syncthing, to save a minute: it spends its time
    waiting (one small rsync per 15 s), on a tree of its own."""
    c.run(A, ["cp", "-a", "tree", "tree-slow"])
    c.run(B, ["rsync", "-a", "-e", " ".join(PLAIN_SSH), f"{A}:tree-slow/", "tree-slow/"],
          timeout=600)
    def lsyncd_default():
        R.samples["lsyncd.default"] = lsyncd(c, "tree-slow", "tree-slow", 15, False,
                                             "lsyncd15", N_SLOW)
    slow = threading.Thread(target=measure, args=("periodic.lsyncd15", lsyncd_default))
    slow.start()
    try:
        measure("periodic.unison", lambda: phase_unison(c))
        measure("periodic.syncthing", lambda: phase_syncthing(c))
    finally:
        slow.join()


def unison(c: Cluster, options: List[str], **kw):
    argv = ["unison", f"{USER_HOME}/tree", f"ssh://{B}/{USER_HOME}/tree-unison",
            "-sshargs", " ".join(PLAIN_SSH[1:]), "-auto", "-batch", "-ui", "text",
            "-confirmbigdel=false", "-perms", "0", *options]
    return c.spawn(A, argv) if kw.get("spawn") else c.run(A, argv + ["-silent"], timeout=600)


def phase_unison(c: Cluster) -> None:
    proc = unison(c, ["-repeat", "1"], spawn=True)
    try:
        R.samples["unison"] = propagation_samples(c, A, "tree/probe-unison.txt", B,
                                                  "tree-unison/probe-unison.txt", N, "unison",
                                                  timeout=120)
    finally:
        stop(proc)


class Syncthing:
    """Two Syncthing instances, alpha and beta, each in its host on the host's own
    address: no discovery, relays, NAT traversal, usage reports or upgrades."""
    PORT, GUI = 22000, 8384
    HOME = f"{USER_HOME}/st"

    def __init__(self, c: Cluster, folders: Dict[str, str]):
        self.c, self.folders, self.procs, self.ids, self.keys = c, folders, {}, {}, {}
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def setup(self) -> None:
        for host in self.folders:
            self.c.run(host, ["syncthing", "generate", f"--home={self.HOME}",
                              "--no-default-folder", "--skip-port-probing"])
            self.ids[host] = self.c.run(host, ["syncthing", "serve", f"--home={self.HOME}",
                                               "--device-id"]).stdout.strip()
            os.makedirs(os.path.join(self.c.path(host, self.folders[host]), ".stfolder"),
                        exist_ok=True)
        for host in self.folders:
            self.configure(host)

    def configure(self, host: str) -> None:
        path = self.c.path(host, "st/config.xml")
        tree = ET.parse(path)
        top = tree.getroot()
        addr = self.c.addr(host)
        gui = top.find("gui")
        gui.find("address").text = f"{addr}:{self.GUI}"
        self.keys[host] = gui.find("apikey").text
        options = top.find("options")
        for name, value in (("listenAddress", f"tcp://{addr}:{self.PORT}"),
                            ("globalAnnounceEnabled", "false"),
                            ("localAnnounceEnabled", "false"),
                            ("relaysEnabled", "false"), ("natEnabled", "false"),
                            ("urAccepted", "-1"), ("autoUpgradeIntervalH", "0"),
                            ("startBrowser", "false"), ("crashReportingEnabled", "false")):
            options.find(name).text = value
        template_device = top.find("defaults/device")
        for other, device_id in self.ids.items():
            if other == host:
                continue
            device = ET.fromstring(ET.tostring(template_device))
            device.set("id", device_id)
            device.set("name", other)
            device.find("address").text = f"tcp://{self.c.addr(other)}:{self.PORT}"
            top.insert(1, device)
        folder = ET.fromstring(ET.tostring(top.find("defaults/folder")))
        folder.set("id", "bench")
        folder.set("label", "bench")
        folder.set("path", f"{USER_HOME}/{self.folders[host]}")
        for entry in folder.findall("device"):
            folder.remove(entry)
        for device_id in self.ids.values():
            ET.SubElement(folder, "device", {"id": device_id, "introducedBy": ""})
        top.insert(0, folder)
        tree.write(path)
        os.chown(path, self.c.uid, self.c.gid)

    def start(self) -> None:
        for host in self.folders:
            self.procs[host] = self.c.spawn(
                host, ["syncthing", "serve", f"--home={self.HOME}", "--no-browser",
                       "--no-restart", "--no-upgrade"], env={"STNODEFAULTFOLDER": "1"})
        wait_until(self.ready, timeout=180, interval=0.5, what="syncthing connected and idle")

    def api(self, host: str, path: str, body=None, method="GET"):
        request = urllib.request.Request(
            f"http://{self.c.addr(host)}:{self.GUI}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"X-API-Key": self.keys[host], "Content-Type": "application/json"})
        with self.opener.open(request, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text.strip() else None

    def ready(self) -> bool:
        try:
            for host in self.folders:
                other = next(self.ids[h] for h in self.folders if h != host)
                if not self.api(host, "/rest/system/connections")["connections"] \
                        .get(other, {}).get("connected"):
                    return False
                if self.api(host, "/rest/db/status?folder=bench").get("state") != "idle":
                    return False
            return True
        except OSError:
            return False

    def set_delay(self, seconds: int) -> None:
        for host in self.folders:
            self.api(host, "/rest/config/folders/bench", {"fsWatcherDelayS": seconds}, "PATCH")
        time.sleep(1.0)
        wait_until(self.ready, timeout=120, interval=0.5, what="syncthing idle again")

    def stop(self) -> None:
        for proc in self.procs.values():
            stop(proc)


def phase_syncthing(c: Cluster) -> None:
    # Pre-seeded like lsyncd's target: the same files with the same times on beta.
    c.run(B, ["rsync", "-a", "--exclude=.git", "-e", " ".join(PLAIN_SSH),
              f"{A}:tree/", "tree-st/"], timeout=600)
    st = Syncthing(c, {A: "tree", B: "tree-st"})
    try:
        st.setup()
        st.start()
        st.set_delay(1)     # first, so that the warm-up probe costs 1 s, not 10
        R.samples["st.1s"] = propagation_samples(
            c, A, "tree/probe-st.txt", B, "tree-st/probe-st.txt", N_ST, "st1", timeout=120)
        st.set_delay(10)
        R.samples["st.default"] = propagation_samples(
            c, A, "tree/probe-st.txt", B, "tree-st/probe-st.txt", N_ST10, "st10", warmup=False)
    finally:
        st.stop()


# Setup and the table ##########################################################

def setup_plain_key(c: Cluster) -> None:
    """One ordinary key for gtfcuser on every host, accepted everywhere (in the
    operator's authorized_keys, not gtfc's authorized_keys2): what rsync and Unison
    need.  Never the default name id_*, so that gtfc's own ssh never offers it."""
    local = os.path.join(c.root, "bench_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", local],
                   check=True)
    with open(local) as f:
        private = f.read()
    public = test_gtfc._public_key(local + ".pub")
    for host in c.names:
        test_gtfc._write_file(c.path(host, ".ssh/bench_ed25519"), private, mode=0o600,
                              owner=(c.uid, c.gid))
        with open(c.path(host, ".ssh/authorized_keys"), "a") as f:
            f.write(public + " bench\n")


def build_table() -> str:
    s, v = R.samples, R.values
    prop = s.get("prop")

    def row(what, ours, anchor_name, theirs, target=""):
        return Row(what, fmt_samples(ours), anchor_name, fmt_samples(theirs),
                   fmt_ratio(ours, theirs), target)

    def check(ok: Optional[bool]) -> str:
        return "" if ok is None else (" ✓" if ok else " ✗")

    def within(samples, limit, pick=statistics.median):
        return None if not samples else pick(samples) <= limit

    prop_ok = None if not prop else (statistics.median(prop) <= 0.1 and p90(prop) <= 0.2)
    rows = [
        row("`ssh host true`, new connection", None, "ssh", s.get("ssh.new")),
        row("`ssh host true`, reused connection (ControlMaster)", None, "ssh", s.get("ssh.reused")),
        row("`git push` of a one-file commit, new connection", None, "git over ssh",
            s.get("push.new")),
        row("`git push` of a one-file commit, reused connection", None, "git over ssh",
            s.get("push.reused")),
        row(f"propagation, {TREE_FILES:,}-file tree: write on A → visible on B "
            f"(gtfc-watch on both)", prop, "lsyncd + rsync over ssh, delay 15 s (default)",
            s.get("lsyncd.default"),
            "≤ 100 ms / p90 ≤ 200 ms" + check(prop_ok)),
        row("〃", prop, "lsyncd + rsync, delay 0, new connection", s.get("lsyncd.0")),
        row("〃", prop, "lsyncd + rsync, delay 0, reused connection", s.get("lsyncd.0.reused")),
        row("〃", prop, "Unison -repeat 1 over ssh (Debian 12's unison has no fs monitor "
            "for -repeat watch)", s.get("unison"),
            "≤ 0.2× Unison" + check(None if not (prop and s.get("unison")) else
                                   statistics.median(prop) * 5 <= statistics.median(s["unison"]))),
        row("〃", prop, "Syncthing, watcher delay 10 s (default)", s.get("st.default")),
        row("〃", prop, "Syncthing, watcher delay 1 s", s.get("st.1s")),
        row("propagation the other way, B → A", s.get("prop.back"), "", None),
        row(f"fan-out, {FAN_FILES:,}-file repo on 9 hosts: write on A → on the last of 8 "
            f"peers (first: {fmt_samples(s.get('fan.first'))})", s.get("fan.last"),
            "gtfc, same repo on 2 hosts (1 peer)", s.get("fan.one"),
            "≤ 2× one peer" + check(None if not (s.get("fan.one") and s.get("fan.last")) else
                                    statistics.median(s["fan.last"]) <=
                                    2 * statistics.median(s["fan.one"]))),
        row(f"scale, {SCALE_FILES:,}-file repo: one file written on A → on B",
            s.get("scale.prop"), f"gtfc, {TREE_FILES:,} files", prop,
            "≤ 150 ms" + check(within(s.get("scale.prop"), 0.15))),
    ]
    if "scale.rss" in v:
        masters, masters_kb = v.get("scale.masters", (0, 0))
        rows.append(Row(f"scale: watcher memory (VmRSS after start / peak VmHWM)",
                        f"{v['scale.rss'] / 1024:.1f} MB / {v['scale.hwm'] / 1024:.1f} MB",
                        f"gtfc, {TREE_FILES:,} files",
                        f"{v['prop.rss'] / 1024:.1f} MB" if "prop.rss" in v else "—", "—",
                        "≤ 40 MB" + check(v["scale.hwm"] <= 40 * 1024)
                        + (f" (+ {masters} ssh master(s), {masters_kb / 1024:.1f} MB)"
                           if masters else "")))
    if "scale.ready" in v:
        rows.append(Row(f"scale: watcher start → watches on all {v['scale.dirs']:,} folders "
                        f"/ → a write made at start is on B",
                        f"{fmt_time(v['scale.watches'])} / {fmt_time(v['scale.ready'])}",
                        target="≤ 5 s" + check(v["scale.watches"] <= 5)))
    if "scale.idle_cpu" in v:
        rows.append(Row(f"scale: idle watcher, CPU and wake-ups over {IDLE_WINDOW:.0f} s",
                        f"{v['scale.idle_cpu'] * 1000:.0f} ms CPU, "
                        f"{v['scale.idle_wakeups']} wake-ups",
                        target="0" + check(v["scale.idle_cpu"] < 0.02)))
    join_s = v.get("join")
    rows += [
        row(f"bulk: a peer joins a repo of {TREE_FILES:,} small files (gtfc-join)", join_s,
            "rsync -a over ssh, same tree", s.get("bulk.rsync"),
            "≤ 2× rsync" + check(None if not (join_s and s.get("bulk.rsync")) else
                                 join_s[0] <= 2 * statistics.median(s["bulk.rsync"]))),
        row("〃", join_s, "Unison, first sync", s.get("bulk.unison")),
        row(f"burst: {BURST_FILES:,} new files written on A → all on B", s.get("burst"),
            "", None, "≤ 3 s" + check(within(s.get("burst"), 3.0))),
        row("no-op `gtfc-push` (nothing new for anyone)"
            + (f"; ssh logins it made: {v['noop.logins']}" if "noop.logins" in v else ""),
            s.get("noop"), "", None,
            "≤ 100 ms, no connection" + check(None if "noop" not in s else
                                              statistics.median(s["noop"]) <= 0.1
                                              and v.get("noop.logins") == 0)),
    ]
    lines = ["| what | gtfc median / p90 | anchor | anchor median / p90 | gtfc / anchor "
             "| target (issue 6) |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.what} | {r.gtfc} | {r.anchor or '—'} | {r.anchor_value} | "
                     f"{r.ratio} | {r.target} |")
    return "\n".join(lines)


def report(header: str) -> str:
    s = R.samples
    parts = [header, "", build_table(), ""]
    notes = [
        f"n = {N} for gtfc, ssh, git, lsyncd delay 0 and Unison, {N_ST} for Syncthing 1 s, "
        f"{N_FAN} for fan-out, {N_SCALE} for scale, {N_BACK} for B → A; "
        f"n = {N_SLOW} for lsyncd's 15 s and {N_ST10} for Syncthing's 10 s defaults, whose "
        "times are "
        "their delay (lsyncd's ran alongside Unison and Syncthing); one gtfc-join and one Unison first sync, "
        f"rsync -a {'once' if RSYNC_RUNS == 1 else f'median of {RSYNC_RUNS}'}. "
        "Times are wall clock from the write (or command start) to the right content "
        f"read on the other host, polled every {POLL * 1000:.0f} ms.",
        "gtfc runs at its defaults (`gtfc-watch -v`); the anchors sync a plain copy of "
        f"the same {TREE_FILES:,}-file tree over the same loopback sshd, with an ordinary "
        "ssh key (no forced command).",
    ]
    if QUICK:
        notes.append(f"QUICK mode: fewer samples and a {SCALE_FILES:,}-file scale repo "
                     "instead of 100,000; run `make bench` for the full figures.")
    if "burst.write" in R.values:
        notes.append(f"The burst's own writing took {fmt_time(R.values['burst.write'])}.")
    if "fan.join" in s:
        notes.append(f"Joins of the fan-out repo ({FAN_FILES:,} files, 1 to 8 "
                     f"members already): median "
                     f"{fmt_time(statistics.median(s['fan.join']))}, "
                     f"max {fmt_time(max(s['fan.join']))}.")
    if "scale.bootstrap" in R.values:
        notes.append(f"Scale repo: gtfc-bootstrap of {SCALE_FILES:,} files took "
                     f"{fmt_time(R.values['scale.bootstrap'])}, gtfc-join "
                     f"{fmt_time(R.values['scale.join'])}.")
    notes.append("Load average (1, 5, 15 min) at the end: "
                 + " ".join(open("/proc/loadavg").read().split()[:3])
                 + " — other work on the machine shows in every figure.")
    for name, why in R.failures.items():
        notes.append(f"**{name} failed**: {why}")
    parts += [f"- {note}" for note in notes]
    return "\n".join(parts) + "\n"


def main() -> int:
    ok, why = test_gtfc.cluster_available()
    if not ok:
        print(f"make bench builds its hosts as Linux namespaces: {why}", file=sys.stderr)
        return 1
    # atexit (and so Cluster.close) also runs on SIGTERM / Ctrl-C.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    taken = [addr for addr in (f"{test_gtfc.TEST_NET}.{11 + i}" for i in range(len(HOSTS)))
             if test_gtfc._port_open(addr)]
    if taken:   # another cluster on our addresses: its host keys would not match
        print(f"make bench: {', '.join(taken)} already answer on port 22 (another test "
              f"cluster?) — wait for it, or pick another network: GTFC_TEST_NET=127.0.N "
              "make bench", file=sys.stderr)
        return 1
    ensure_tools()
    header = "### gtfc benchmark (`make bench" + (" QUICK=1" if QUICK else "") + "`)\n\n" \
        + machine()
    say(f"building a {len(HOSTS)}-host cluster on {test_gtfc.TEST_NET}.0/24")
    with Cluster(HOSTS, gtfc_py=GTFC_PY) as c:
        setup_plain_key(c)
        measure("raw", lambda: phase_raw(c))
        say(f"making the {TREE_FILES:,}-file tree (gtfc repo prop on alpha, plain copy tree)")
        R.values["make"] = timed(lambda: make_tree(c, A, "tree", TREE_FILES))
        c.run(A, ["cp", "-a", "tree", "prop"])
        R.values["bootstrap"] = timed(lambda: bootstrap(c, A, "prop"))
        say(f"   made in {fmt_time(R.values['make'])}, bootstrapped in "
            f"{fmt_time(R.values['bootstrap'])}")
        measure("bulk", lambda: phase_bulk(c))
        if not os.path.isdir(c.path(B, "prop")):
            join(c, B, A, "prop")
            wait_quiet(c, (A, B))
        measure("noop", lambda: phase_noop(c))
        measure("prop", lambda: phase_prop(c))
        measure("lsyncd", lambda: phase_lsyncd_fast(c))
        measure("periodic", lambda: phase_periodic(c))
        measure("fanout", lambda: phase_fanout(c))
        measure("scale", lambda: phase_scale(c))
        say("tearing the cluster down")
    text = report(header)
    print(text)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "results-quick.md" if QUICK else "results.md")
    if not ONLY:
        with open(out, "w") as f:
            f.write(text)
        say(f"written to {os.path.relpath(out, ROOT)} in {time.monotonic() - STARTED:.0f} s")
    return 1 if R.failures else 0


if __name__ == "__main__":
    sys.exit(main())
