#!/usr/bin/env python3
"""gtfc — git for cluster sync over ssh.

gtfc mirrors one directory on every host of a small cluster, with full history, over
the ssh you already trust, and nothing to install but this one file.

    alpha$ gtfc-bootstrap ~/myrepo          # make ~/myrepo a synced directory
    beta$  gtfc-join alpha ~/myrepo         # inside `ssh -A beta`: clone it, become a peer
    alpha$ gtfc-push                        # send local changes to every peer
    beta$  gtfc-pull                        # fetch what peers have (e.g. at boot)
    beta$  gtfc-watch                       # from now on changes flow by themselves

Install: `python3 gtfc.py install` copies this file to PREFIX/lib/gtfc/gtfc.py, writes
a launcher PREFIX/bin/gtfc and the symlinks gtfc-bootstrap, gtfc-join, gtfc-push,
gtfc-pull, gtfc-watch, gtfc-shell, gtfc-shell.denywrite, gtfc-remove and gtfc-unjoin
beside it; the file looks at the name it was called by (argv[0], see main).

How data flows — each stage is a section of this file, in this order:
  watch     cmd_watch runs a RepoWatch per repo: open_watcher picks inotify (Linux),
            kqueue (BSD/macOS) or polling; RepoWatch.watch debounces a burst of
            events, then RepoWatch.integrate_and_spread commits, merges and hands
            our head to a PeerLink thread per peer.
  commit    commit_local: `git status` and `git add` of just the paths the watcher
            saw (and record_metadata: their modes and owners, in .gtfc/meta), then
            git's plumbing (write-tree, commit-tree, update-ref).
  send      push_to_peer (from a PeerLink, or send_head for gtfc-push): a peer that
            lacks our head gets it into its inbox ref refs/gtfc/in/<us> (a ref no
            working tree has checked out, so a push never fights the receiver's
            files) — on a PushSession (a thin pack on a long-lived `gtfc-receive`
            session) or by push_head (`git push`).  The push-session protocol, both
            ends, is in this section: its receiving end (serve_stream) runs in
            gtfc-shell.
  receive   on the peer, cmd_shell (the forced command gtfc-shell) runs
            git-receive-pack, or serve_stream for a push session, then rings the
            peer's watcher (ring_doorbell) or merges in a forked child
            (start_background_integrate).
  integrate integrate → integrate_whole → integrate_locked, under the repo lock
            (integrate_whole: see Self-heal below): commit_local, then
            merge_incoming folds every inbox and fetched head into HEAD
            (merge_commits → causal_merge_tree, each path settled by settle), then
            update_worktree moves the files (refusing to clobber a file that changed
            meanwhile — it is committed and merged on the next round) and
            apply_metadata gives them their modes and owners.  A damaged repo
            (check_whole at a process's first round, or git failing with
            RepoDamaged on the way) is repaired from the peers (heal) and the
            round run again.

History: every host keeps history back to its horizon (.git/shallow), which
keep_history moves as the synced settings in .gtfc/history/ ask (gtfc forget,
gtfc purge) and as far as is safe; no merge reads history behind the one commit
where its sides' histories meet, so hosts with different horizons merge alike.
See "History horizon".

State: each stage's caches and flags live on the Repo it works on (the last
checkout, merge memos, membership parsed per tree, read-only peers, the last thin
pack); a watcher's own timing (backoff, sessions, what onAttention was told) on its
RepoWatch, PeerLink and Attention objects; what must outlive a process in files
under .git/gtfc/.  The module holds constants, LOG (the process's one log channel)
and PACK_LOCK.

Merges are deterministic: the same two commits give the same merge commit id on every
node (sorted parents, a rule that reads only the two commits' history, fixed
identity, date of the later parent).  And they are canonical: a node merges the
edits behind the heads it holds (looking through gtfc's own merges), in sorted order,
so nodes that know the same edits reach the same commit however the edits travelled
— the cluster converges instead of trading merges of merges.  Each path is settled by
its own causal history (see "Merges, the causal rule"): the writes no other write
follows win; concurrent contents merge their lines against the version their
writers both had, and a real collision keeps both versions: one under the name, the
other beside it as NAME.conflict-<node>-<date>-<blob>.EXT.  A delete racing an edit
keeps the edit.

Failures, one convention.  An expected failure the user must act on (bad argument,
not a gtfc repo, a lock another process holds: RepoBusy) raises GtfcError, caught
once in main and printed as one line `gtfc: what — fix`.  Where the caller goes on
past a failure — one peer of many, one file of many, a checkout retried next round —
the function returns the reason instead: Optional[str], None for success (for_each_peer
turns one peer's GtfcError into such a reason).  Parsers of what others wrote raise
ValueError where a caller words the problem (node records, shell quoting), GtfcError
where the message goes straight back to the peer (its command, a push line); a push
session's read returns b"" for a dead session.
Log lines (warnings, the watcher's events) all go through LOG, one channel.

Membership lives in the repo: one file per node in .gtfc/nodes/ (address, user, repo
path, the node's gtfc public key, its ssh host keys).  From it each node derives

  * a managed block in ~/.ssh/authorized_keys2 letting each peer's key run only
    `gtfc-shell REPO --peer NAME` (with `restrict`: no shell, pty, forwarding), whose
    pushes may move only its own inbox ref.  Replace gtfc-shell by
    gtfc-shell.denywrite on a line to make this host read-only for that peer; gtfc
    keeps that choice when it rewrites the block;
  * .git/gtfc/known_hosts, so gtfc's own ssh calls check pinned host keys.

Each user has one dedicated key per host, ~/.ssh/gtfc_ed25519.  The operator's
forwarded agent is used only by gtfc-join, to introduce the new node to its first peer.
"""

import collections
import contextlib
import enum
import errno
import functools
import heapq
import itertools
import fcntl
import os
import re
import select
import shlex
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import zlib
from typing import (TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, NamedTuple,
                    Optional, Tuple)

if TYPE_CHECKING:                       # for annotations only: imported where used
    import argparse
# Imported where used: argparse, ctypes, concurrent.futures, faulthandler, glob, grp, hashlib,
# pwd, shutil, socket, tempfile, traceback.  gtfc-shell starts on every push a peer makes,
# and loading them (and dataclasses: see NamedTuple below) would add half to its
# start-up.

VERSION = "0.1.0"
MIN_GIT = (2, 33)              # rev-list --no-commit-header
KEY_NAME = "gtfc_ed25519"
NODES_DIR = ".gtfc/nodes"
# The merge rule this gtfc runs (see causal_merge_tree), announced by each node in
# RULES_DIR/<node>: nodes with different rules would merge the same commits
# differently and never agree, so a node holds back from peers that announce
# another (hold_back_merges).  Raise it with every change to what a merge makes.
# What each number changed, and the fuzz seed or review that showed why, is in
# bench/HISTORY.md (*Merge rules, number by number*); the functions' comments name
# the seed or review.
MERGE_RULE = 61
RULES_DIR = ".gtfc/merge-rule"
GTFC_FOLDER = NODES_DIR.split("/")[0].encode()
INBOX = "refs/gtfc/in/"        # each peer's own head as last seen: its push, our fetch
HAS = "refs/gtfc/has/"         # written by us: a commit we know each peer has
MERGE_IDENTITY = ("gtfc", "gtfc@gtfc")
CONNECT_TIMEOUT = 5            # seconds for TCP connect + ssh banner
TRANSFER_TIMEOUT = 3600        # hard cap on one push or fetch (stalls: ServerAlive*)
LOCAL_GIT_TIMEOUT = 3600       # a first commit of a big tree on a slow disk is slow
LOCK_TIMEOUT = 600.0           # integrate's wait for another gtfc's work on a repo
MASS_DELETE_MIN = 10           # deleting at least this many and over half is refused
DISK_LOW = 1 << 20             # bytes free below which status calls the disk full
DEBOUNCE = 0.02                # quiet period that ends a burst of writes
SETTLED = 0.005                # the same, when every file written was closed again
DEBOUNCE_CAP = 1.0             # longest a busy writer can delay a commit
PULL_INTERVAL = 60.0           # anti-entropy pull while watching
RETRY_MAX = 300.0              # longest backoff for an unreachable peer
POLL_TICK = 1.0                # the polling back end needs a read() this often
VANISHED_POLL = 2.0            # how often to look for a vanished folder's return
LINK_NAMES = ("gtfc-bootstrap", "gtfc-join", "gtfc-push", "gtfc-pull", "gtfc-watch",
              "gtfc-shell", "gtfc-shell.denywrite", "gtfc-remove", "gtfc-unjoin")
LOOSE_READ_MAX = 1 << 16      # bytes of a loose object gtfc reads itself (see loose_object)
# Git's modes as diffs and ls-tree spell them; NO_FILE: a path absent on one side.
FILE_MODE, EXEC_MODE, SYMLINK_MODE, GITLINK_MODE, NO_FILE = \
    "100644", "100755", "120000", "160000", "000000"
FILE_MODES = (FILE_MODE, EXEC_MODE)
FOLDER_MODE = b"40000"         # as a tree object spells it
# The modes git writes in trees; it reads others (100664 from old tools) as one of these.
TREE_MODES = tuple(m.encode() for m in (*FILE_MODES, SYMLINK_MODE, GITLINK_MODE)) + \
    (FOLDER_MODE,)
COPY_MARK = ".conflict-"       # in every conflict copy's name (see conflict_copy_name)
OID_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# A node name is part of ref names: nothing git refuses there (.., a final . or .lock).
NODE_NAME_RE = re.compile(r"^(?!.*\.\.)(?!.*\.lock$)[A-Za-z0-9][A-Za-z0-9._-]{0,62}(?<!\.)$")
USER_RE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$")
ADDRESS_RE = re.compile(r"^[A-Za-z0-9._:\[\]-]{1,253}$")
PUBKEY_RE = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|"
                       r"sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)"
                       r" [A-Za-z0-9+/]+={0,3}$")
# Characters that would need escaping inside authorized_keys' command="..." or a URL.
UNSAFE_PATH_RE = re.compile(r"[\"'\\\x00-\x1f\x7f]")


# Errors and running commands #################################################

class GtfcError(Exception):
    """An expected failure: printed as one line `gtfc: what — fix`, exit 1."""


def run(argv, *, cwd=None, input=None, env=None, timeout=60, check=True,
        show_stderr=False, umask=-1, pass_fds=()):
    """Run argv (never through a shell) and return the CompletedProcess (bytes).
    show_stderr: let the child write to our stderr (progress meters), not capture it.
    pass_fds: open files the child gets, under the same numbers.

    On timeout the child gets SIGTERM first: git then removes its lock files
    (index.lock), where SIGKILL would leave the repo locked for every later run."""
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, umask=umask, pass_fds=pass_fds,
                                stderr=None if show_stderr else subprocess.PIPE)
    except FileNotFoundError:
        raise GtfcError(f"{argv[0]} not found — install it or put it on PATH") from None
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        raise GtfcError(f"`{' '.join(argv[:3])} …` took longer than {timeout} s and "
                        f"was stopped — check the host's load or network") from None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if check and proc.returncode != 0:
        raise GtfcError(f"`{' '.join(argv[:3])} …` failed: {last_line(err)}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err or b"")


def disk_full_hint(stderr: bytes) -> str:
    """What to do, when git failed for want of disk space or of a writable disk."""
    if any(m in stderr for m in (b"No space left", b"Out of diskspace", b"ENOSPC",
                                 b"Disk quota exceeded")):
        return " — the disk is full: free some space, and gtfc syncs again by itself"
    if b"Read-only file system" in stderr:
        return (" — the file system is read-only (remounted after a disk error? see dmesg): "
                "nothing is committed or received here until it is writable again")
    return ""


def last_line(data) -> str:
    """The last non-empty line of a command's output, for one-line error messages."""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"


class Log:
    """gtfc's one log channel: warnings and the watcher's events, to stderr (a
    terminal, the journal under systemd, or .git/gtfc/log for a background merge)
    or to syslog (gtfc-watch --syslog).  A command prints bare warnings; a
    long-running process (configure(stamp=True)) starts every line with the time.
    ERROR, EVENT and DETAIL: -q keeps errors only, -v adds detail."""
    ERROR, EVENT, DETAIL = 0, 1, 2

    def __init__(self):
        self.level, self.stamp, self.syslog = self.EVENT, False, None

    def configure(self, level: int = EVENT, stamp: bool = True, to_syslog: bool = False):
        self.level, self.stamp = level, stamp
        if to_syslog:
            import syslog                   # see "Imported where used"
            syslog.openlog("gtfc", syslog.LOG_PID, syslog.LOG_DAEMON)
            self.syslog = syslog

    def __call__(self, message: str, level: int = EVENT) -> None:
        if level > self.level:
            return
        if self.syslog:
            priority = self.syslog.LOG_ERR if level == self.ERROR else self.syslog.LOG_INFO
            # A file name that is not UTF-8 (surrogates) would make syslog raise.
            self.syslog.syslog(priority, message.encode("utf-8", "backslashreplace").decode())
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S ") if self.stamp else ""
        print(stamp + message, file=sys.stderr, flush=True)


# The one piece of mutable module state: where this process's log lines go, set
# once at the start of a long-running process (like logging's root logger, which
# gtfc does not load: it would add a tenth to gtfc-shell's start-up).
LOG = Log()


def warn(message: str) -> None:
    LOG(f"gtfc: {message}", Log.ERROR)


def info(message: str) -> None:
    print(message, flush=True)


@functools.lru_cache(maxsize=None)
def git_version() -> Tuple[Tuple[int, ...], str]:
    """((major, minor), what `git version` says)."""
    out = run(["git", "version"]).stdout.decode().strip()
    return tuple(int(n) for n in re.findall(r"\d+", out)[:2]), out


def check_git_version() -> None:
    found, out = git_version()
    if found < MIN_GIT:
        raise GtfcError(f"{out} is too old: gtfc needs git ≥ "
                        f"{MIN_GIT[0]}.{MIN_GIT[1]} — "
                        "install a newer git")


# Paths, registry and this node ###############################################

def home() -> str:
    return os.path.expanduser("~")


def home_relative(path: str) -> str:
    """How to name PATH on another host: `~/x` for paths under our home, else as is.

    A path under the local user's home means the same path under the remote user's
    home, since user names and homes may differ between hosts.
    """
    rel = os.path.relpath(path, home())
    if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
        return path if rel != "." else "~"
    return "~/" + rel


def shell_word(path: str) -> str:
    """path quoted for a shell command line, keeping a leading ~/ expandable."""
    if path.startswith("~/"):
        return "~/" + shlex.quote(path[2:])
    return shlex.quote(path)


def check_repo_path(path: str) -> str:
    if UNSAFE_PATH_RE.search(path):
        raise GtfcError(f"repo path {path!r} contains quotes, backslashes or control "
                        "characters — pick a plainer path")
    return path


def config_dir() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home(), ".config")
    return os.path.join(base, "gtfc")


def registry_path() -> str:
    return os.path.join(config_dir(), "repos")


def registered_repos() -> List[str]:
    try:
        with open(registry_path(), encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip().startswith("/")]
    except FileNotFoundError:
        return []


def register_repo(path: str) -> None:
    repos = registered_repos()
    if path not in repos:
        write_file_atomic(registry_path(), "".join(r + "\n" for r in repos + [path]))


def unregister_repo(path: str) -> None:
    write_file_atomic(registry_path(),
                      "".join(r + "\n" for r in registered_repos() if r != path))


def write_file_atomic(path: str, text: str, mode: int = 0o644,
                      scratch: Optional[str] = None) -> None:
    """Write via a temporary file and rename, so readers see old or new, never half.
    scratch: where the temporary file goes (same file system) if not beside path —
    in a synced folder, a watcher would commit it."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    import tempfile                     # see "Imported where used"
    fd, tmp = tempfile.mkstemp(dir=scratch or folder, prefix=".gtfc-tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def installed_bin_dir() -> str:
    """Where gtfc-shell lives: peers' forced commands must name it by absolute path."""
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    if os.path.exists(os.path.join(here, "gtfc-shell")):
        return here
    import shutil                       # see "Imported where used"
    found = shutil.which("gtfc-shell")
    if found:
        return os.path.dirname(os.path.abspath(found))
    raise GtfcError("gtfc is not installed on this host (no gtfc-shell found) — "
                    "run: python3 gtfc.py install")


# Git plumbing: running git, refs and objects, what changed ###################

def short(oid: str) -> str:
    return oid[:10]


STALE_LOCK_AGE = 2.0    # seconds; a live git may close its lock file just before renaming


def lock_in_use(path: str) -> bool:
    """Does any process hold path open?  Known exactly where /proc shows file
    descriptors (Linux); elsewhere only locks older than ten minutes count as stale."""
    import glob                         # see "Imported where used"
    if not os.path.isdir("/proc/self/fd"):
        try:
            return time.time() - os.lstat(path).st_mtime < 600
        except FileNotFoundError:
            return False
    target = os.path.realpath(path)
    for fd_dir in glob.glob("/proc/[0-9]*/fd"):
        try:
            names = os.listdir(fd_dir)
        except OSError:                     # gone, or not ours to look at
            continue
        for name in names:
            with contextlib.suppress(OSError):
                if os.readlink(os.path.join(fd_dir, name)) == target:
                    return True
    return False


class RepoBusy(GtfcError):
    """Another gtfc process holds the repo lock (only raised when asked not to wait)."""


class RepoDamaged(GtfcError):
    """git found part of this repo unreadable (see DAMAGE_SIGNS); integrate repairs
    it from peers (see heal), or stops syncing it."""


DAMAGE_HINT = " — gtfc repairs it from its peers at its next round (or now: gtfc-pull)"


# What git says when an object, a ref or the index is damaged (a power cut without
# fsync, a failing disk), as opposed to a missing argument or a full disk.
DAMAGE_SIGNS = re.compile(
    rb"object file \S+ is empty|(loose|packed) object [0-9a-f]+ \(stored in \S+\) is corrupt"
    rb"|unable to unpack [0-9a-f]+ header|invalid object \d+ [0-9a-f]+ for"
    rb"|unable to read (tree|sha1 file of)|missing (blob|tree|commit) object"
    rb"|index file (corrupt|smaller than expected)|bad index file sha1 signature"
    rb"|bad signature 0x|fatal: bad object HEAD|inflate: data stream error")


class GitFiles:
    """Refs and loose objects, read (and refs written) straight from the files git
    keeps them in, for a Repo: a git process costs 1-3 ms to start, more than most
    of what a change's trip asks.  Anything packed, big or unusual is asked of git
    (self.git, which Repo provides) — during a fold, of one cat-file kept open."""

    reader: Optional["ObjectReader"] = None     # see open_objects
    trees_read: Dict[str, Dict[bytes, Tuple[bytes, str]]]   # see tree_entries

    def head(self) -> str:
        oid = self.head_if_any()
        if oid is None:
            raise GtfcError(f"{self.path} has no commit yet — run gtfc-bootstrap there again")
        return oid

    def head_if_any(self) -> Optional[str]:
        """HEAD, or None in a repo whose bootstrap stopped before its first commit."""
        try:
            with open(os.path.join(self.git_dir, "HEAD"), encoding="utf-8") as f:
                text = f.read().strip()
        except (OSError, UnicodeError):
            text = ""
        if OID_RE.fullmatch(text):
            return text                 # detached
        if text.startswith("ref: refs/"):
            target = text[len("ref: "):]
            found = self.ref_files(target)
            if found is not None:
                return found.get(target)
        return self.git("rev-parse", "--verify", "-q", "HEAD",
                        check=False).stdout.decode().strip() or None

    def has_commit(self) -> bool:
        return self.head_if_any() is not None

    def refs(self, prefix: str) -> Dict[str, str]:
        """{ref name without prefix: oid} for every ref under prefix (ending in /)."""
        found = self.ref_files(prefix)
        if found is None:
            lines = self.out("for-each-ref", "--format=%(objectname) %(refname)", prefix)
            found = dict(reversed(line.split(" ", 1)) for line in lines.splitlines())
        return {ref[len(prefix):]: oid for ref, oid in found.items()}

    def ref_files(self, prefix: str) -> Optional[Dict[str, str]]:
        """{ref: oid} for the ref named prefix or the refs under it, read from the
        files git keeps them in (.git/refs/…, .git/packed-refs): a git process
        per read costs 2-3 ms, and a change reads refs several times on its way.
        None for a repo that keeps its refs another way (reftable): ask git.

        Loose files are read before packed-refs: `git pack-refs` writes
        packed-refs before it removes loose files, so no ref is missed."""
        if os.path.exists(os.path.join(self.git_dir, "reftable")):
            return None
        found = {}
        top = os.path.join(self.git_dir, prefix)
        loose = [top] if os.path.isfile(top) else [
            os.path.join(folder, name) for folder, _, names in os.walk(top) for name in names
            if not name.endswith(".lock")]          # a ref being written
        for path in loose:
            with contextlib.suppress(OSError, UnicodeError):    # just replaced or removed
                with open(path, encoding="utf-8") as f:
                    text = f.read().strip()
                if OID_RE.fullmatch(text):
                    found[os.path.relpath(path, self.git_dir).replace(os.sep, "/")] = text
        try:
            with open(os.path.join(self.git_dir, "packed-refs"), encoding="utf-8") as f:
                for line in f:
                    oid, _, ref = line.rstrip("\n").partition(" ")
                    if (ref == prefix or ref.startswith(prefix.rstrip("/") + "/")) \
                            and OID_RE.fullmatch(oid):
                        found.setdefault(ref, oid)
        except FileNotFoundError:
            pass
        return found

    def set_ref(self, ref: str, oid: str, message: str = "") -> None:
        """Point ref at oid as git update-ref does in a files repo: write REF.lock,
        rename it into place.  Every change moves a ref per peer on both ends, and
        a git process costs more than the write.  git does it when anything more
        is asked (see plain_ref) or another writer holds the lock."""
        if not (self.plain_ref(ref) and self.write_loose_ref(ref, oid)):
            self.git("update-ref", *(["-m", message] if message else []), ref, oid)

    def plain_ref(self, ref: str) -> bool:
        """Would git write ref as just a file holding its id?  Not with a reflog,
        in a reftable repo, for file modes of a shared repo, nor for a name git
        refuses (git then says why)."""
        config = self.local_config()
        return not (".." in ref or ref.endswith((".lock", ".", "/")) or
                    os.path.exists(os.path.join(self.git_dir, "logs", ref)) or
                    os.path.exists(os.path.join(self.git_dir, "reftable")) or
                    config.get("core.logallrefupdates", "").lower() == "always" or
                    config.get("core.sharedrepository", "false").lower() not in
                    ("false", "umask", "0", "no", "off"))

    def write_loose_ref(self, ref: str, oid: str) -> bool:
        path = os.path.join(self.git_dir, ref)
        lock = path + ".lock"
        if not os.path.isdir(self.git_dir):
            return False                # gone: git says so, and makes nothing
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError:
            return False
        try:
            try:
                os.write(fd, f"{oid}\n".encode())
            finally:
                os.close(fd)
            os.rename(lock, path)
            return True
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(lock)
            return False

    def has_object(self, oid: str) -> bool:
        """Is oid in the repo (loose: seen here; packed: git tells)?"""
        if os.path.exists(os.path.join(self.git_dir, "objects", oid[:2], oid[2:])):
            return True
        return self.git("cat-file", "-e", oid, check=False).returncode == 0

    def loose_object(self, oid: str, objects: Optional[str] = None
                     ) -> Optional[Tuple[bytes, bytes]]:
        """(type, content) of a small object kept loose in objects (the repo's own
        by default), read here: just unpacked or committed, what a change's trip
        looks at is loose, and a git process per look costs more than the look.
        None when it is not loose there (packed, absent) or over 64 KiB: ask git."""
        objects = objects or os.path.join(self.git_dir, "objects")
        try:
            with open(os.path.join(objects, oid[:2], oid[2:]), "rb") as f:
                data = zlib.decompressobj().decompress(f.read(LOOSE_READ_MAX), LOOSE_READ_MAX)
        except (OSError, zlib.error):
            return None
        header, _, content = data.partition(b"\0")
        kind, _, size = header.partition(b" ")
        if not size.isdigit() or int(size) != len(content):
            return None
        return kind, content

    def cheap_object(self, oid: str, objects: Optional[str] = None
                     ) -> Optional[Tuple[bytes, bytes]]:
        """(type, content) of an object read without starting git: loose, or (in
        the repo's own objects) from the fold's open cat-file (see ObjectReader).
        None: ask git."""
        found = self.loose_object(oid, objects)
        reader = self.reader
        if found is None and objects is None and reader and reader.owner == threading.get_ident():
            found = reader.read(oid)
        return found

    def commit_fields(self, oid: str, objects: Optional[str] = None
                      ) -> Optional[Tuple[str, List[str]]]:
        """(tree, parents) of a commit; None if not known without git."""
        found = self.cheap_object(oid, objects)
        if not found or found[0] != b"commit":
            return None
        lines = found[1].split(b"\n")
        parents = itertools.takewhile(lambda line: line.startswith(b"parent "), lines[1:])
        return lines[0][len(b"tree "):].decode(), [line[len(b"parent "):].decode()
                                                   for line in parents]

    def tree_entries(self, oid: str, objects: Optional[str] = None
                     ) -> Optional[Dict[bytes, Tuple[bytes, str]]]:
        """{name: (mode, id)} of a tree; None if not known without git.  Kept: a
        fold reads the same big folders again and again.  With objects named, read
        from there and not kept: the question is whether it is there, whole."""
        if objects is None and oid in self.trees_read:
            return self.trees_read[oid]
        found = self.cheap_object(oid, objects)
        if not found or found[0] != b"tree":
            return None
        entries, width, start, tree, last = found[1], len(oid) // 2, 0, {}, b""
        while start < len(entries):             # MODE SP NAME NUL ID, sorted by name
            space = entries.find(b" ", start)
            end = entries.find(b"\0", space)
            name, mode = entries[space + 1:end], entries[start:space]
            order = name + b"/" if mode == FOLDER_MODE else name    # git's order
            if space < 0 or end < 0 or order <= last or mode not in TREE_MODES or \
                    end + 1 + width > len(entries):     # malformed or odd: git judges it
                return None
            tree[name], last = (mode, entries[end + 1:end + 1 + width].hex()), order
            start = end + 1 + width
        if objects is None:
            if len(self.trees_read) > 5000:
                self.trees_read.clear()
            self.trees_read[oid] = tree
        return tree

    def tree_of(self, oid: str) -> Optional[str]:
        """The tree of a commit, or a tree itself; None if not known without git."""
        found = self.cheap_object(oid)
        if found and found[0] == b"tree":
            return oid
        if found and found[0] == b"commit" and found[1].startswith(b"tree "):
            return found[1][len(b"tree "):found[1].find(b"\n")].decode()
        return None

    def author_and_parents(self, oid: str) -> Optional[Tuple[str, List[str]]]:
        """(author's email, parents) of a commit; None if not known without git."""
        found = self.cheap_object(oid)
        if not found or found[0] != b"commit":
            return None
        header = found[1].split(b"\n\n", 1)[0].decode(errors="replace").split("\n")
        parents = [line[len("parent "):] for line in header if line.startswith("parent ")]
        author = next((line for line in header if line.startswith("author ")), "")
        email = re.search(r"<([^>]*)> \d+ [-+]\d{4}$", author)
        return (email.group(1), parents) if email else None

    def parents(self, commit: str) -> Optional[List[str]]:
        fields = self.commit_fields(commit)
        return fields and fields[1]

    def top_entry(self, commit: str, name: bytes) -> Optional[str]:
        """The id of name in a commit's top folder; None if not known without
        asking git (or not there)."""
        fields = self.commit_fields(commit)
        tree = fields and self.tree_entries(fields[0])
        return tree[name][1] if tree and name in tree else None


class ObjectReader:
    """One `git cat-file --batch` kept open while a fold runs, for the thread that
    opened it.  A fold reads trees, blobs and commits that gc has packed, and a
    git process per read costs more than the read: a fold after a 5-node
    partition heals started some 200 (bench/HISTORY.md).  Anything odd (a missing
    object, a dead process) answers None, and the caller asks git as before."""

    def __init__(self, repo: "GitFiles"):
        self.owner = threading.get_ident()
        self.proc: Optional[subprocess.Popen] = subprocess.Popen(
            ["git", "-C", repo.path, "cat-file", "--batch"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))

    def read(self, oid: str) -> Optional[Tuple[bytes, bytes]]:
        proc = self.proc
        if proc is None or not OID_RE.fullmatch(oid):
            return None
        try:
            proc.stdin.write(oid.encode() + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline().split()          # OID TYPE SIZE, or OID missing
            if len(header) != 3 or header[0] != oid.encode():
                if header[-1:] != [b"missing"]:
                    self.close()                # out of step: no answer can be trusted
                return None
            size = int(header[2])
            content = proc.stdout.read(size + 1)
        except (OSError, ValueError):
            self.close()
            return None
        if len(content) != size + 1:
            self.close()
            return None
        return header[1], content[:size]

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            proc.stdout.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def open_objects(repo: "GitFiles"):
    """Read objects through one cat-file while the block runs (see ObjectReader)."""
    if repo.reader is not None:
        yield
        return
    repo.reader = ObjectReader(repo)
    try:
        yield
    finally:
        reader, repo.reader = repo.reader, None
        reader.close()


class Repo(GitFiles):
    """One gtfc repo: an ordinary git repo whose working tree is the synced folder.
    Runs git there, locks it for gtfc's own work, reads its settings; holds the
    pipeline's per-repo caches and flags (see __init__)."""

    def __init__(self, path: str):
        self.path = os.path.realpath(path)
        self.git_dir = os.path.join(self.path, ".git")
        self.state_dir = os.path.join(self.git_dir, "gtfc")
        self._node: Optional[str] = None
        self._config: Tuple[int, Dict[str, str]] = (0, {})
        self.allow_mass_delete = False      # set by --allow-mass-delete
        # The last checkout: the commit it moved to, the paths it changed (if not
        # too many: see echoes_removed), whether membership changed with them.
        self.checked_out: Tuple[Optional[str], Dict[bytes, "Change"], bool] = (None, {}, False)
        # A commit and commits known to be in its history (see unmerged_heads).
        self.contained: Tuple[Optional[str], set] = (None, set())
        # Merges are pure functions of commits: what this process already worked
        # out (merge_commits, read_history), for the next round's fold.
        self.merge_memo: Dict[tuple, object] = {}
        self.trees_read = {}
        self.graph = CommitGraph()          # see commit_graph
        self.metadata_walked = False        # see record_metadata
        self.checked_whole = False          # see check_whole
        self.following = 0                  # see follow_replaced
        # Membership rarely changes, and is read on every round: parsed once per
        # tree, looked up once per commit (see read_nodes).
        self.nodes_by_tree: Dict[str, Dict[str, "Node"]] = {}
        self.nodes_tree_of: Dict[str, str] = {}
        # {tree: {name: why}} of the records parse_nodes ignored, for gtfc status: a
        # typo in a record quietly cuts that node off from every host.
        self.invalid_nodes: Dict[str, Dict[str, str]] = {}
        # Peers found read-only (gtfc-shell.denywrite): they fetch by themselves, so
        # we stop pushing to them until the next pull round.  PeerLink threads add
        # to it: single set operations, atomic in CPython, and readers take a copy.
        self.read_only_peers: set = set()
        # What keep_history last found, and from what (see there).
        self.horizon_looked: Tuple[object, Optional["Horizon"]] = (None, None)
        # The last thin pack made (see thin_pack): the same for every peer.
        self.last_pack: Dict[Tuple[str, frozenset], bytes] = {}

    def git(self, *args, input=None, env=None, check=True, timeout=LOCAL_GIT_TIMEOUT,
            umask=-1, pass_fds=()):
        """Run git here.  A lock file left by a git that was killed (it holds no
        file open and is not brand new) is removed and the command run again."""
        full_env = dict(os.environ, GIT_TERMINAL_PROMPT="0", **(env or {}))
        argv = ["git", "-C", self.path, *args]
        proc = run(argv, input=input, env=full_env, timeout=timeout, check=False, umask=umask,
                   pass_fds=pass_fds)
        for _ in range(4):          # an update of HEAD locks HEAD and its branch: two
            if proc.returncode == 0 or not self.remove_stale_lock(proc.stderr):
                break
            proc = run(argv, input=input, env=full_env, timeout=timeout, check=False,
                       umask=umask, pass_fds=pass_fds)
        if check and proc.returncode != 0:
            failed = (f"`git {' '.join(args[:2])} …` failed in {self.path}: "
                      f"{last_line(proc.stderr)}")
            if DAMAGE_SIGNS.search(proc.stderr):
                suspect_damage(self)            # whoever runs the next round checks all
                raise RepoDamaged(f"{failed}: the repo is damaged{DAMAGE_HINT}")
            raise GtfcError(failed + disk_full_hint(proc.stderr))
        return proc

    def remove_stale_lock(self, stderr: bytes) -> bool:
        match = re.search(rb"Unable to create '([^']+\.lock)': File exists", stderr)
        return bool(match) and self.remove_lock_if_stale(os.fsdecode(match.group(1)))

    def remove_lock_if_stale(self, lock: str) -> bool:
        """Remove a lock file in .git that no process holds and that is not brand
        new (a git killed, or a power cut); True if it is gone."""
        if not os.path.realpath(lock).startswith(os.path.realpath(self.git_dir) + os.sep):
            return False
        try:
            age = time.time() - os.lstat(lock).st_mtime
        except FileNotFoundError:
            return True                     # gone by now: just try again
        if age < STALE_LOCK_AGE or lock_in_use(lock):
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        warn(f"removed {lock}, left behind by a git that was killed")
        return True

    def out(self, *args, **kw) -> str:
        return self.git(*args, **kw).stdout.decode().strip()

    def setting(self, name: str) -> str:
        """gtfc.NAME from this repo's own git config ("" if unset): settings are
        local to each node, never synced."""
        return self.local_config().get(f"gtfc.{name}".lower(), "")

    def local_config(self) -> Dict[str, str]:
        """This repo's own git config, read again only when the file changed."""
        try:
            stamp = os.stat(os.path.join(self.git_dir, "config")).st_mtime_ns
        except FileNotFoundError:
            return {}
        if stamp != self._config[0]:
            listing = self.git("config", "--local", "-z", "--list").stdout
            self._config = (stamp, dict(
                (item.split("\n", 1) + [""])[:2]
                for item in listing.decode(errors="surrogateescape").split("\0") if item))
        return self._config[1]

    @property
    def node(self) -> str:
        if self._node is None:
            self._node = self.setting("node")
            if not self._node:
                raise GtfcError(f"{self.path} is a git repo but not a gtfc repo — "
                                "gtfc-bootstrap adopts it")
        return self._node

    def make_state_dir(self) -> str:
        """.git/gtfc, made if missing — but never the repo itself: a folder that
        vanished (unmounted, moved away) must not come back as gtfc's empty
        skeleton, which would block the real one's return."""
        try:
            os.mkdir(self.state_dir)
        except FileExistsError:
            pass
        except FileNotFoundError:
            raise GtfcError(f"{self.path} is gone (unmounted or moved?) — gtfc syncs it "
                            "again once it is back") from None
        return self.state_dir

    @contextlib.contextmanager
    def lock(self, timeout: float = 120.0, name: str = "lock"):
        """Serialise gtfc's own work on this repo.  flock dies with its process, so a
        killed gtfc never leaves a stale lock behind."""
        try:
            self.make_state_dir()
            f = open(os.path.join(self.state_dir, name), "a")
        except OSError as e:
            if e.errno not in (errno.EROFS, errno.ENOSPC, errno.EDQUOT):
                raise
            raise GtfcError(f"cannot lock {self.path}: {e.strerror}"
                            f"{disk_full_hint(e.strerror.encode())}") from None
        with f:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if timeout == 0:
                        raise RepoBusy(f"{self.path} is busy: another gtfc works on it "
                                       "— it takes this change along") from None
                    if time.monotonic() > deadline:
                        raise GtfcError(f"{self.path} stayed locked by another gtfc "
                                        f"for {timeout:.0f} s — is one stuck? "
                                        "(see `fuser .git/gtfc/lock`)") from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def log_path(self) -> str:
        return os.path.join(self.state_dir, "log")


def find_repos(arg: Optional[str]) -> List[Repo]:
    """The repos a command acts on: the one named, else the one holding the current
    directory, else every repo this user has bootstrapped or joined on this host."""
    if arg:
        repo = Repo(os.path.expanduser(arg))
        if not os.path.isdir(repo.git_dir):
            raise GtfcError(f"{arg} is not a gtfc repo (no .git there) — check the path; "
                            "your repos are listed in " + registry_path())
        check_owner(repo)
        repo.node  # raises a clear error if it is not a gtfc repo
        return [repo]
    registered = registered_repos()
    cwd = os.path.realpath(os.getcwd())
    for path in registered:
        if cwd == path or cwd.startswith(path.rstrip("/") + "/"):
            return [check_owner(Repo(path))]
    here = os.fsdecode(run(["git", "rev-parse", "--show-toplevel"], check=False).stdout.strip())
    if here and Repo(here).setting("node"):
        raise GtfcError(f"{here} is a gtfc repo that was moved (peers know it by its old "
                        "path) — move it back, or gtfc unjoin it and join anew")
    if here:
        warn(f"{here} is not a gtfc repo; acting on every repo you registered")
    repos = [Repo(p) for p in registered if os.path.isdir(os.path.join(p, ".git"))]
    missing = [p for p in registered if not os.path.isdir(os.path.join(p, ".git"))]
    for path in missing:
        warn(f"{path} is registered but missing (unmounted or moved?) — skipped")
    if not repos:
        raise GtfcError("no gtfc repo here and none registered — run "
                        "gtfc-bootstrap DIR, or gtfc-join HOST DIR" if not missing else
                        "every registered repo is missing — mount or move them back, or "
                        f"edit {registry_path()}")
    return [check_owner(r) for r in repos]


def check_owner(repo: Repo) -> Repo:
    """gtfc acts as the user who owns the repo (its key, its authorized_keys2);
    as anyone else, git itself would refuse the repo as of dubious ownership."""
    owner = os.stat(repo.path).st_uid
    if owner != os.geteuid():
        import pwd                          # see "Imported where used"
        with contextlib.suppress(KeyError):
            owner = pwd.getpwuid(owner).pw_name
        raise GtfcError(f"{repo.path} belongs to {owner} — run gtfc as that user "
                        f"(e.g. sudo -u {owner} gtfc …)")
    return repo


# Merges must come out the same on every node, whatever each one's git config:
# no system or global config, and fixed values for what changes merge results.
MERGE_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
MERGE_CONFIG = ["-c", "i18n.commitEncoding=UTF-8"]
# Written to .git/info/attributes, which beats any .gitattributes a peer pushes:
# content is committed byte for byte (no filters, no EOL rewriting), and merges
# use git's default drivers on every node.
LOCAL_ATTRIBUTES = ("* -text -filter -ident -working-tree-encoding !eol !merge "
                    "!conflict-marker-size\n")


def no_index(repo: Repo) -> Dict[str, str]:
    """Environment for diff-tree, which reads the index only for .gitattributes,
    which LOCAL_ATTRIBUTES overrides: pointed at none, it skips reading 10 MB in a
    100,000-file tree."""
    return {"GIT_INDEX_FILE": os.path.join(repo.state_dir, "no-index")}


def folder_blobs(repo: Repo, commit: str, folder: str) -> Dict[str, str]:
    """{name: blob id} of the files directly in folder, in commit."""
    listing = repo.git("ls-tree", "-z", commit, folder + "/").stdout
    entries = (entry.split(b"\t", 1) for entry in listing.split(b"\0") if entry)
    return {os.path.basename(os.fsdecode(path)): meta.split()[2].decode()
            for meta, path in entries if meta.split()[1] == b"blob"}


def blob_texts(repo: Repo, blobs: List[str]) -> List[bytes]:
    """The contents of blobs: those read without git (see cheap_object) read here,
    the rest from one git process."""
    texts = {}
    for oid in blobs:
        found = repo.cheap_object(oid)
        if found and found[0] == b"blob":
            texts[oid] = found[1]
    asked = sorted(set(blobs) - set(texts))
    out = repo.git("cat-file", "--batch", input="".join(b + "\n" for b in asked).encode()
                   ).stdout if asked else b""
    for oid in asked:
        header, _, out = out.partition(b"\n")
        if not header[-1:].isdigit():           # "OID missing"
            suspect_damage(repo)
            raise RepoDamaged(f"{repo.path}: blob {short(oid)} cannot be read: the repo is "
                              f"damaged{DAMAGE_HINT}")
        size = int(header.split()[2])
        texts[oid], out = out[:size], out[size + 1:]
    return [texts[oid] for oid in blobs]


class Change(NamedTuple):
    old_mode: str
    new_mode: str
    old_oid: str
    new_oid: str
    kind: str               # A, M, D or T (type change)
    path: bytes


def tree_changes(repo: Repo, old: str, new: str) -> List[Change]:
    """Each file that differs between two trees (or commits), as git diff-tree -r
    lists them.  Read here where git need not be asked (see Repo.cheap_object)."""
    trees = [repo.tree_of(oid) for oid in (old, new)]
    if None not in trees:
        changes = tree_changes_here(repo, *trees, len(old))
        if changes is not None:
            return changes
    raw = repo.git("diff-tree", "-r", "-z", "--no-renames", old, new,
                   env=no_index(repo)).stdout.split(b"\0")
    changes = []
    for meta, path in zip(raw[0::2], raw[1::2]):
        old_mode, new_mode, old_oid, new_oid, kind = meta[1:].decode().split()
        changes.append(Change(old_mode, new_mode, old_oid, new_oid, kind, path))
    return changes


def tree_changes_here(repo: Repo, old: Optional[str], new: Optional[str], width: int,
                       prefix: bytes = b"") -> Optional[List[Change]]:
    """tree_changes from trees read here (None: git must read one).  In git's
    order: by name, a folder's name read with a / after it."""
    if old == new:
        return []
    trees = [{} if oid is None else repo.tree_entries(oid) for oid in (old, new)]
    if None in trees:
        return None
    before, after = ({name + b"/" if mode == FOLDER_MODE else name: (mode, oid)
                      for name, (mode, oid) in tree.items()} for tree in trees)
    absent = (NO_FILE, "0" * width)
    changes: List[Change] = []
    for key in sorted(before.keys() | after.keys()):
        (old_mode, old_oid), (new_mode, new_oid) = (
            (side[key][0].decode(), side[key][1]) if key in side else absent
            for side in (before, after))
        if (old_mode, old_oid) == (new_mode, new_oid):
            continue
        if key.endswith(b"/"):
            inner = tree_changes_here(repo, before.get(key, (0, None))[1],
                                       after.get(key, (0, None))[1], width, prefix + key)
            if inner is None:
                return None
            changes += inner
            continue
        kind = "A" if old_mode == absent[0] else "D" if new_mode == absent[0] else \
            "M" if old_mode[:2] == new_mode[:2] else "T"
        changes.append(Change(old_mode, new_mode, old_oid, new_oid, kind, prefix + key))
    return changes


def holds_blob(full: str, st: os.stat_result, mode: str, oid: str,
               read_from: Optional[str] = None) -> bool:
    """Is the file at full (lstat st) git's blob oid with git's mode?  Its bytes are
    read from read_from when given (a hard link to the same file)."""
    if mode == SYMLINK_MODE:
        return stat.S_ISLNK(st.st_mode) and \
            blob_id(os.fsencode(os.readlink(full)), oid) == oid
    return mode in FILE_MODES and stat.S_ISREG(st.st_mode) and \
        bool(st.st_mode & 0o100) == (mode == EXEC_MODE) and \
        file_blob_id(read_from or full, oid) == oid


def blob_hasher(like: str, size: int):
    """A hash of git's blob header for size bytes, in the kind of the object id like
    (SHA-1 or SHA-256): git hash-object, without a process per checkout."""
    import hashlib                      # see "Imported where used"
    digest = hashlib.sha256() if len(like) == 64 else hashlib.sha1()
    digest.update(b"blob %d\0" % size)
    return digest


def blob_id(data: bytes, like: str) -> str:
    digest = blob_hasher(like, len(data))
    digest.update(data)
    return digest.hexdigest()


def file_blob_id(path: str, like: str) -> str:
    with open(path, "rb") as f:
        digest = blob_hasher(like, os.fstat(f.fileno()).st_size)
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Membership ##################################################################

class Node(NamedTuple):
    """How peers reach one node: a file .gtfc/nodes/<name> in the repo."""
    name: str
    address: str
    user: str
    path: str
    key: str
    hostkeys: Tuple[str, ...] = ()
    port: int = 22


def format_node(node: Node) -> str:
    lines = ["# gtfc node: how peers reach this node. Written by gtfc.",
             f"address = {node.address}", f"port = {node.port}", f"user = {node.user}",
             f"path = {node.path}", f"key = {node.key}"]
    lines += [f"hostkey = {k}" for k in node.hostkeys]
    return "\n".join(lines) + "\n"


def parse_node(name: str, text: str) -> Node:
    """Parse and strictly validate a node record.  Records arrive from peers, and
    their keys end up in authorized_keys2, so nothing unexpected may pass."""
    if not NODE_NAME_RE.fullmatch(name):
        raise ValueError(f"bad node name {name!r}")
    fields: Dict[str, str] = {}
    hostkeys: List[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise ValueError(f"line without '=': {line[:40]!r}")
        if key == "hostkey":
            hostkeys.append(value)
        elif key in ("address", "port", "user", "path", "key") and key not in fields:
            fields[key] = value
        else:
            raise ValueError(f"unknown or repeated field {key!r}")
    missing = {"address", "user", "path", "key"} - set(fields)
    if missing:
        raise ValueError(f"missing {', '.join(sorted(missing))}")
    if not ADDRESS_RE.fullmatch(fields["address"]) or fields["address"].startswith("-"):
        raise ValueError(f"bad address {fields['address']!r}")
    if not USER_RE.fullmatch(fields["user"]):
        raise ValueError(f"bad user {fields['user']!r}")
    if not fields["path"].startswith("/") or UNSAFE_PATH_RE.search(fields["path"]):
        raise ValueError(f"bad path {fields['path']!r}")
    for k in [fields["key"]] + hostkeys:
        if not PUBKEY_RE.fullmatch(k):
            raise ValueError(f"bad public key {k[:30]!r}")
    port = fields.get("port", "22")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port!r}")
    return Node(name, fields["address"], fields["user"], fields["path"], fields["key"],
                tuple(hostkeys), int(port))


def read_nodes(repo: Repo, commit: str = "HEAD") -> Dict[str, Node]:
    """Every valid node record in COMMIT (committed state, never the raw worktree)."""
    if commit == "HEAD":
        commit = repo.head()
    tree = repo.nodes_tree_of.get(commit)
    if tree is None:
        tree = repo.out("rev-parse", "--verify", "-q", f"{commit}:{NODES_DIR}", check=False)
        if not tree:
            # Strict: a failed git must not read as "no members", which would drop
            # every peer's key.  Only a commit without the folder has none.
            repo.out("rev-parse", "--verify", f"{commit}^{{commit}}")
        if len(repo.nodes_tree_of) > 1000:
            repo.nodes_tree_of.clear()
        if OID_RE.fullmatch(commit):
            repo.nodes_tree_of[commit] = tree
    if tree not in repo.nodes_by_tree:
        repo.nodes_by_tree[tree] = parse_nodes(repo, tree) if tree else {}
    return dict(repo.nodes_by_tree[tree])


def same_members(repo: Repo, old: str, new: str) -> None:
    """Commit new has old's membership (no node file changed between them)."""
    if old in repo.nodes_tree_of:
        repo.nodes_tree_of[new] = repo.nodes_tree_of[old]


def parse_nodes(repo: Repo, tree: str) -> Dict[str, Node]:
    listing = repo.git("ls-tree", "-z", tree).stdout
    records = []
    for entry in filter(None, listing.split(b"\0")):
        meta, path = entry.split(b"\t", 1)
        name = path.decode(errors="replace")
        if COPY_MARK not in name and meta.split()[1] == b"blob":
            records.append((name, meta.split()[2].decode()))   # a conflict copy is no node
    nodes = {}
    for (name, _), blob in zip(records, blob_texts(repo, [oid for _, oid in records])):
        text = blob.decode(errors="replace")
        try:
            nodes[name] = parse_node(name, text)
        except ValueError as e:
            warn(f"ignoring membership record {name!r} in {repo.path}: {e}")
            repo.invalid_nodes.setdefault(tree, {})[name] = str(e)
    return nodes


def invalid_nodes(repo: Repo) -> Dict[str, str]:
    """{name: why} of the membership records in HEAD that are ignored."""
    head = repo.head()
    read_nodes(repo, head)
    return dict(repo.invalid_nodes.get(repo.nodes_tree_of.get(head, ""), {}))


def peers(repo: Repo) -> List[Node]:
    return [n for name, n in sorted(read_nodes(repo).items()) if name != repo.node]


def key_path() -> str:
    return os.path.join(home(), ".ssh", KEY_NAME)


def ensure_key(node_name: str) -> str:
    """This user's dedicated gtfc key on this host, made on first use."""
    path = key_path()
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"gtfc@{node_name}",
             "-f", path])
    with open(path + ".pub", encoding="ascii") as f:
        return " ".join(f.read().split()[:2])


def local_host_keys() -> List[str]:
    import glob                         # see "Imported where used"
    keys = []
    for pub in sorted(glob.glob("/etc/ssh/ssh_host_*_key.pub")):
        with contextlib.suppress(OSError), open(pub, encoding="ascii") as f:
            key = " ".join(f.read().split()[:2])
            if PUBKEY_RE.fullmatch(key):
                keys.append(key)
    if not keys:
        raise GtfcError("no ssh host key found in /etc/ssh — is sshd installed and "
                        "running on this host? Peers need it to reach this node")
    return keys


def this_node(name: str, address: Optional[str], path: str) -> Node:
    import getpass
    address = address or os.uname().nodename
    if not ADDRESS_RE.fullmatch(address) or address.startswith("-"):
        raise GtfcError(f"{address!r} is not a host name or address peers could reach "
                        "— pass --address HOST (a name or an IP)")
    return Node(name=name, address=address,
                user=getpass.getuser(), path=path, key=ensure_key(name),
                hostkeys=tuple(local_host_keys()))


def default_node_name() -> str:
    name = os.uname().nodename.split(".")[0]
    if not NODE_NAME_RE.fullmatch(name):
        raise GtfcError(f"hostname {name!r} is not a usable node name — pass --name")
    return name


def write_node_record(repo: Repo, node: Node) -> None:
    write_file_atomic(os.path.join(repo.path, NODES_DIR, node.name), format_node(node))
    announce_merge_rule(repo, node.name)


def announce_merge_rule(repo: Repo, name: Optional[str] = None) -> None:
    """Write this node's merge rule where its peers read it (committed with the next
    commit, so an upgraded node tells the others)."""
    path = os.path.join(repo.path, RULES_DIR, name or repo.node)
    with contextlib.suppress(OSError):
        with open(path) as f:
            if f.read() == f"{MERGE_RULE}\n":
                return
    if os.path.isdir(os.path.join(repo.path, NODES_DIR)):
        write_file_atomic(path, f"{MERGE_RULE}\n")


def other_merge_rules(repo: Repo, commit: str) -> Dict[str, str]:
    """{member: the merge rule it announced in commit} for the members whose rule is
    not ours ("1" for one that announced none)."""
    members = set(read_nodes(repo, commit)) - {repo.node}
    if not members:
        return {}
    blobs = folder_blobs(repo, commit, RULES_DIR)
    announced = [name for name in sorted(members) if name in blobs]
    rules = dict.fromkeys(members, "1")
    for name, text in zip(announced, blob_texts(repo, [blobs[n] for n in announced])):
        rules[name] = text.decode(errors="replace").strip()
    return {name: rule for name, rule in rules.items() if rule != str(MERGE_RULE)}


def configure_repo(repo: Repo, name: str) -> None:
    repo.git("config", "gtfc.node", name)
    repo._node = name
    add_repo_config(repo)
    write_file_atomic(os.path.join(repo.git_dir, "info", "attributes"), LOCAL_ATTRIBUTES)


# Every gtfc repo's own git config.  Peers may only add history: no deletes, and
# objects are checked on arrival.  A split index: each change rewrites a small
# file instead of the whole index (10 MB for 100,000 files), 2 ms less per git
# command on 10,000 files, 20 ms on 100,000; old shared parts go after an hour.
REPO_CONFIG = (("receive.denyDeletes", "true"), ("receive.fsckObjects", "true"),
               ("core.quotePath", "false"), ("core.splitIndex", "true"),
               ("splitIndex.sharedIndexExpire", "1.hour.ago"))


# Durable before acknowledged: objects, refs and the index reach the disk before
# git renames them into place (git leaves loose objects and refs to the page cache by
# default, and a power cut then leaves a ref naming an empty object).  Git before
# 2.36 knows only the objects' setting (and 2.36 on warns about it).
DURABLE_CONFIG = (("core.fsync", "added"),)
OLD_DURABLE_CONFIG = (("core.fsyncObjectFiles", "true"),)


def add_repo_config(repo: Repo) -> None:
    """Set what REPO_CONFIG names and the repo's config lacks (gtfc-watch also does
    this, for repos made by an older gtfc); an admin's own value stays."""
    have = repo.local_config()
    durable = DURABLE_CONFIG if git_version()[0] >= (2, 36) else OLD_DURABLE_CONFIG
    for key, value in REPO_CONFIG + durable:
        if key.lower() not in have:
            repo.git("config", key, value)


# Access: authorized_keys2 and known_hosts, derived from membership ###########

BLOCK_BEGIN = "# >>> gtfc: managed block; gtfc rewrites it from membership. " \
              "You may change gtfc-shell to gtfc-shell.denywrite on a line."
BLOCK_END = "# <<< gtfc"
KEY_IN_LINE_RE = re.compile(PUBKEY_RE.pattern[1:-1].replace("={0,3}$", "={0,3}")
                            + r"(?=\s|$)")


def split_managed_block(text: str) -> Tuple[List[str], List[str], List[str]]:
    """(lines before the block, lines of the block, lines after), keeping user lines."""
    lines = text.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith("# >>> gtfc"))
        end = next(i for i in range(start, len(lines)) if lines[i] == BLOCK_END)
    except StopIteration:
        return lines, [], []
    return lines[:start], lines[start + 1:end], lines[end + 1:]


class Grant(NamedTuple):
    """What one peer key may do here: sync these repos, as the nodes so named."""
    repos: set
    names: set


def render_authorized_keys(old_text: str, grants: Dict[str, Grant], shell: str) -> str:
    """The new authorized_keys2 text: user lines byte for byte, then our block.

    grants maps a peer's public key to what it may do.  A line an admin
    switched to gtfc-shell.denywrite stays so; if every old line was switched, the
    whole host is read-only and new peers get denywrite too.
    """
    before, block, after = split_managed_block(old_text)
    denied = {m.group(0) for l in block if "gtfc-shell.denywrite" in l
              for m in [KEY_IN_LINE_RE.search(l)] if m}
    all_denied = bool(block) and all("gtfc-shell.denywrite" in l for l in block
                                     if not l.startswith("#"))
    managed = []
    for key, grant in sorted(grants.items()):
        program = shell + (".denywrite" if all_denied or key in denied else "")
        words = [program, *sorted(grant.repos)]
        for name in sorted(grant.names):
            words += ["--peer", name]
        command = " ".join(shlex.quote(w) for w in words)
        managed.append(f'command="{command}",restrict {key} gtfc-peer')
    out = before + [BLOCK_BEGIN] + managed + [BLOCK_END] + after
    return "\n".join(out) + "\n"


def refresh_access(repos: List[Repo]) -> None:
    """Rewrite the authorized_keys2 block for all of this user's repos, and each
    repo's known_hosts, from committed membership."""
    grants: Dict[str, Grant] = {}
    for repo in repos:
        if not repo.has_commit():
            warn(f"{repo.path} has no commit yet (a bootstrap that stopped half way?) — "
                 "run gtfc-bootstrap on it again")
            continue                    # no members either: nobody to let in
        for peer in peers(repo):
            grant = grants.setdefault(peer.key, Grant(set(), set()))
            grant.repos.add(repo.path)
            grant.names.add(peer.name)
        write_known_hosts(repo)
    ssh_dir = os.path.join(home(), ".ssh")
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    path = os.path.join(ssh_dir, "authorized_keys2")
    shell = os.path.join(installed_bin_dir(), "gtfc-shell")
    os.makedirs(config_dir(), exist_ok=True)
    with open(os.path.join(config_dir(), "lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)    # read-modify-write: one writer at a time
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                old = f.read()
        except FileNotFoundError:
            old = ""
        new = render_authorized_keys(old, grants, shell)
        if new != old:
            write_file_atomic(path, new, mode=0o600)


def all_local_repos() -> List[Repo]:
    return [Repo(p) for p in registered_repos() if os.path.isdir(os.path.join(p, ".git"))]


def write_known_hosts(repo: Repo) -> None:
    lines = [f"{host_alias(n)} {k}" for n in read_nodes(repo).values() for k in n.hostkeys]
    write_file_atomic(known_hosts_path(repo), "".join(l + "\n" for l in lines))


def known_hosts_path(repo: Repo) -> str:
    return os.path.join(repo.state_dir, "known_hosts")


def host_alias(node: Node) -> str:
    return f"gtfc-node-{node.name}"


# ssh connections #############################################################

def ssh_options(known_hosts: Optional[str], alias: Optional[str]) -> List[str]:
    """Options for gtfc's own ssh calls: only the gtfc key, never an agent, never a
    prompt, pinned host keys, and bounded waits."""
    opts = ["-i", key_path(), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT}", "-o", "ServerAliveInterval=2",
            "-o", "ServerAliveCountMax=2", "-o", "ForwardAgent=no",
            "-o", "ClearAllForwardings=yes", "-o", "RequestTTY=no"]
    if known_hosts:
        # Quoted: ssh splits this option's value at spaces (it may list files).
        opts += ["-o", f'UserKnownHostsFile="{known_hosts}"',
                 "-o", "GlobalKnownHostsFile=/dev/null"]
    if alias:
        opts += ["-o", f"HostKeyAlias={alias}"]
    return opts


def git_ssh_env(opts: List[str]) -> Dict[str, str]:
    # git runs GIT_SSH_COMMAND through sh, so every word is quoted.
    return {"GIT_SSH_COMMAND": " ".join(shlex.quote(a) for a in ["ssh", *opts]),
            "GIT_SSH_VARIANT": "ssh"}


def peer_url(node: Node) -> str:
    return f"ssh://{node.user}@{node.address}:{node.port}{node.path}"


def peer_ssh_options(repo: Repo, node: Node) -> List[str]:
    return ssh_options(known_hosts_path(repo), host_alias(node))


def peer_env(repo: Repo, node: Node) -> Dict[str, str]:
    """git's ssh for node (see shared_connection)."""
    return git_ssh_env(peer_ssh_options(repo, node) + shared_connection(repo, node))


def shared_connection(repo: Repo, node: Node) -> List[str]:
    """ssh options to go through the shared connection to node when this host can
    have one, else a connection of its own (ControlMaster=no: never a master)."""
    path = mux_path(repo, node)
    return ["-o", "ControlMaster=no", "-o", f'ControlPath="{path}"'] if path else []


def ssh_login(node: Node) -> List[str]:
    """ssh's arguments naming node: its port, and user@host."""
    return ["-p", str(node.port), f"{node.user}@{node.address.strip('[]')}"]


# One ssh connection per peer, kept open MUX_PERSIST seconds after its last use and
# shared by every push and fetch: a new session on it takes milliseconds, a new
# connection a key exchange.  gtfc starts the master itself, with no pipe of ours
# attached: a master that git's ssh forked would hold git's stderr open, and every
# call reading it would wait until the master exits.
MUX_PERSIST = 120


def mux_path(repo: Repo, node: Node) -> Optional[str]:
    """The control socket for node, or None when the path is too long for a Unix
    socket (then every call makes its own connection)."""
    # Per repo and per our node's name too: sshd fixes a connection's forced command,
    # and with it the repos it may sync and the node it speaks for, when the
    # connection is made (a node unjoined and joined again under another name must
    # not go on through the old name's connection, which peers refuse).
    ident = f"{repo.path}\0{repo.node}\0{node.user}@{node.address}:{node.port}".encode()
    import hashlib                      # see "Imported where used"
    path = os.path.join(config_dir(), "mux", hashlib.sha1(ident).hexdigest()[:20])
    return path if len(os.fsencode(path)) < 100 else None


def mux_alive(path: str) -> bool:
    import socket                       # see "Imported where used"
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def close_connection(repo: Repo, node: Node) -> bool:
    """Ask the shared connection to node to end; True if there was one."""
    path = mux_path(repo, node)
    if path is None or not mux_alive(path):
        return False
    run(["ssh", "-o", f'ControlPath="{path}"', "-O", "exit", *ssh_login(node)],
        check=False, timeout=10)
    return True


def open_connection(repo: Repo, node: Node) -> Optional[str]:
    """Make sure the shared connection to node is up: None if it is (or if this
    host cannot share connections), else why node cannot be reached."""
    import tempfile                     # see "Imported where used"
    path = mux_path(repo, node)
    if path is None or mux_alive(path):
        return None
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)        # one master per peer, however many ask
        if mux_alive(path):
            return None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)                     # left by a master that was killed
        argv = ["ssh", *peer_ssh_options(repo, node), "-N", "-f",
                "-o", "ControlMaster=yes", "-o", f'ControlPath="{path}"',
                "-o", f"ControlPersist={MUX_PERSIST}", *ssh_login(node)]
        with tempfile.TemporaryFile() as err:
            try:
                status = subprocess.call(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         timeout=CONNECT_TIMEOUT * 3)
            except subprocess.TimeoutExpired:
                return f"{node.name} unreachable (no answer in {CONNECT_TIMEOUT * 3} s)" \
                       " — will catch up when it is back"
            err.seek(0)
            return explain_ssh_failure(node.name, err.read()) if status else None


def explain_ssh_failure(who: str, stderr: bytes, stdout: bytes = b"") -> str:
    """Turn ssh/git noise into one line naming the problem and the fix."""
    text = stderr.decode(errors="replace")
    refused = re.search(r"\[remote rejected\] \((.*)\)", stdout.decode(errors="replace"))
    if refused:
        return f"{who} refused the push: {refused.group(1)}"
    if "gtfc-shell.denywrite" in text:
        return f"{who} is read-only for its peers (gtfc-shell.denywrite); it fetches by itself"
    if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION" in text:
        return (f"{who}: host key does not match the one pinned in membership — if {who} "
                "was reinstalled, have it re-join; otherwise suspect an impostor")
    if "mux_client" in text or "master failed" in text:     # the shared connection broke
        return f"{who} unreachable (it stopped answering) — will catch up when it is back"
    if "no longer a member" in text:
        return (f"{who} says this node is no longer a member (someone ran gtfc remove) — "
                "re-join if that was a mistake")
    if "Permission denied" in text:
        return (f"{who} refused our gtfc key — it has not learned of this node yet "
                f"(run gtfc-pull on {who}), or this node was removed (gtfc remove)")
    detail = failure_detail(text)
    for hint in ("timed out", "Connection refused", "No route to host",
                 "Could not resolve", "Connection closed", "Network is unreachable",
                 "Broken pipe", "Connection reset", "hung up unexpectedly",
                 "no reason given"):
        if hint in text or hint in detail:
            return f"{who} unreachable ({detail}) — will catch up when it is back"
    return f"{who}: {detail}"


def failure_detail(text: str) -> str:
    """The specific line of an ssh/git failure, not git's closing boilerplate
    ("Could not read from remote repository. Please make sure ... exists.")."""
    lines = [l.strip() for l in text.splitlines() if l.strip() and not any(
        noise in l for noise in GIT_BOILERPLATE)]
    # gtfc-shell's own refusals come as "gtfc: …": the caller names the peer instead.
    return lines[0].removeprefix("gtfc: ") if lines else \
        "the connection ended with no reason given"


GIT_BOILERPLATE = ("Could not read from remote repository", "Please make sure you have",
                   "and the repository exists", "failed to push some refs")


# Pipeline 1, watch: the back ends ############################################

#
# open_watcher(root) returns an object that reports which paths under `root`
# changed. Three back ends share one interface (see Watcher):
#
#   inotify  Linux, via ctypes. One watch per directory, so the cost is one
#            kernel watch per directory (fs.inotify.max_user_watches).
#   kqueue   BSD/macOS. kqueue only reports changes on open descriptors, so it
#            costs one fd per file *and* directory (bounded by `ulimit -n`).
#   poll     Anywhere. Stats the whole tree every poll_interval seconds.
#
# Paths are relative to root with '/' separators. Anything inside the
# top-level .git directory is never reported: git writes there constantly and
# the caller would otherwise chase its own tail. Debouncing is the caller's job;
# read() only drains what is queued.

GIT_DIR = ".git"

# Entries that disappear or become unreadable between listing and watching.
# That race is normal while files are being created and deleted; the event on
# the parent directory already reports the path, so these are skipped.
_UNWATCHABLE = (FileNotFoundError, NotADirectoryError, PermissionError)


def _join(parent, name):
    return parent + "/" + name if parent else name


def _read_sysctl(name):
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return "?"


class WatchLimit(GtfcError):
    """The kernel's inotify limits: open_watcher and RepoWatch then poll instead."""


def _os_error(op, err, root=""):
    """The one place errno values are interpreted: resource limits become an
    actionable GtfcError, anything else a plain OSError (FileNotFoundError etc.)."""
    if op == "inotify_add_watch" and err == errno.ENOSPC:
        # A user namespace (a container) may set a lower limit of its own.
        limits = {n: _read_sysctl(n) for n in ("fs.inotify.max_user_watches",
                                               "user.max_inotify_watches")}
        name = min(limits, key=lambda n: int(limits[n]) if limits[n].isdigit() else 1 << 62)
        return WatchLimit(f"inotify watch limit reached ({name} = {limits[name]}) — polling "
                          "instead, which walks the whole tree every second: raise it "
                          f"(sysctl {name}=524288) and restart gtfc-watch")
    if op == "inotify_init1" and err == errno.EMFILE:
        limit = _read_sysctl("fs.inotify.max_user_instances")
        return WatchLimit(f"too many inotify instances (fs.inotify.max_user_instances = {limit})"
                          " — polling instead: raise it (sysctl fs.inotify.max_user_instances"
                          "=1024) and restart gtfc-watch")
    if op == "open" and err in (errno.EMFILE, errno.ENFILE):
        return GtfcError(f"out of file descriptors watching {root} (kqueue needs one per file)"
                         " — raise the limit with `ulimit -n 65536`, or use --poll")
    return OSError(err, os.strerror(err))


class Watcher:
    """Interface shared by the back ends; use as a context manager or call close()."""

    backend = ""

    def fileno(self):
        """A descriptor that becomes readable when events are pending, or None."""
        return None

    def read(self, timeout):
        """Wait up to `timeout` seconds; return (changed_paths, rescan_needed).

        rescan_needed=True means events were lost and everything must be
        treated as changed."""
        raise NotImplementedError

    def settled(self):
        """True when every file written to so far has been closed again (or
        renamed into place): the writer is done.  False when unknown."""
        return False

    def close(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def open_watcher(root, force_poll=False, poll_interval=1.0):
    """Return the best watcher for this platform: inotify, kqueue, else poll."""
    if not (os.path.isdir(root) and os.access(root, os.R_OK | os.X_OK)):
        raise GtfcError(f"cannot watch {root}: not a readable directory — check the path and its permissions")
    if not force_poll and sys.platform.startswith("linux"):
        try:
            return InotifyWatcher(root)
        except WatchLimit as e:
            warn(str(e))
        except (OSError, AttributeError):
            pass  # no usable inotify (odd libc, seccomp sandbox...): polling still works
    elif not force_poll and hasattr(select, "kqueue"):
        return KqueueWatcher(root)
    return PollWatcher(root, poll_interval)


# -- inotify ------------------------------------------------------------------

class IN(enum.IntFlag):
    """inotify event bits from <sys/inotify.h>."""
    MODIFY = 0x00000002
    ATTRIB = 0x00000004
    CLOSE_WRITE = 0x00000008
    MOVED_FROM = 0x00000040
    MOVED_TO = 0x00000080
    CREATE = 0x00000100
    DELETE = 0x00000200
    DELETE_SELF = 0x00000400
    MOVE_SELF = 0x00000800
    UNMOUNT = 0x00002000
    Q_OVERFLOW = 0x00004000
    IGNORED = 0x00008000
    ONLYDIR = 0x01000000
    DONT_FOLLOW = 0x02000000
    EXCL_UNLINK = 0x04000000
    ISDIR = 0x40000000


_DIR_MASK = (IN.CREATE | IN.DELETE | IN.MODIFY | IN.CLOSE_WRITE | IN.ATTRIB | IN.MOVED_FROM
             | IN.MOVED_TO | IN.DELETE_SELF | IN.MOVE_SELF | IN.ONLYDIR | IN.EXCL_UNLINK
             | IN.DONT_FOLLOW)
_INOTIFY_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len
_INOTIFY_BUFSIZE = 64 * 1024
# A busy tree could keep the queue non-empty forever; bound one read() call so
# the caller's loop still gets control back (the rest is read next time).
_INOTIFY_MAX_READS = 64


@functools.lru_cache(maxsize=None)
def _libc():
    import ctypes.util                  # see "Imported where used"
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc


def ctypes_errno() -> int:
    import ctypes
    return ctypes.get_errno()


def _check(op, *args):
    """Call libc function `op`; a -1 result raises via _os_error. EINTR is retried."""
    func = getattr(_libc(), op)
    while True:
        result = func(*args)
        if result != -1:
            return result
        err = ctypes_errno()
        if err != errno.EINTR:
            raise _os_error(op, err)


def parse_inotify_events(buf):
    """Split a raw read() from an inotify fd into (wd, mask, cookie, name) tuples.

    `name` is NUL-padded by the kernel; it is decoded with os.fsdecode so that
    non-UTF-8 names survive the round trip back to os.fsencode."""
    events = []
    offset = 0
    while offset + _INOTIFY_HEADER.size <= len(buf):
        wd, mask, cookie, length = _INOTIFY_HEADER.unpack_from(buf, offset)
        offset += _INOTIFY_HEADER.size
        name = buf[offset:offset + length].split(b"\0", 1)[0]
        offset += length
        events.append((wd, mask, cookie, os.fsdecode(name)))
    return events


class InotifyWatcher(Watcher):
    backend = "inotify"

    def __init__(self, root):
        self.root = os.path.realpath(root)  # entries are never followed, but root may be a link
        self._fd = _check("inotify_init1", os.O_NONBLOCK | os.O_CLOEXEC)
        self._dirs = {}  # wd -> directory path relative to root ("" is root)
        self._writing = {}  # path -> when a write to it began (no CLOSE_WRITE yet)
        self._poller = select.poll()  # not select.select(): fds above 1023 must work
        self._poller.register(self._fd, select.POLLIN)
        try:
            self._watch_tree("", set())
        except BaseException:
            self.close()
            raise

    def fileno(self):
        return self._fd

    def read(self, timeout):
        changed, rescan = set(), False
        if not self._poller.poll(max(timeout, 0) * 1000):
            return changed, rescan
        for _ in range(_INOTIFY_MAX_READS):
            try:
                buf = os.read(self._fd, _INOTIFY_BUFSIZE)
            except BlockingIOError:
                break
            for event in parse_inotify_events(buf):
                rescan |= self._handle(event, changed)
        return changed, rescan

    def settled(self):
        # A file written through a descriptor never closed (a log, a hard link's
        # CREATE) would keep the writer "busy" forever: forget it after a while.
        now = time.monotonic()
        for path, since in list(self._writing.items()):
            if now - since > DEBOUNCE_CAP:
                del self._writing[path]
        return not self._writing

    def close(self):
        if self._fd >= 0:
            os.close(self._fd)  # closing the fd drops every watch with it
            self._fd = -1
            self._dirs.clear()

    def _abspath(self, rel):
        return os.path.join(self.root, rel) if rel else self.root

    def _handle(self, event, changed):
        """Apply one event: record changed paths, keep watches in step with
        the tree. Returns True when events were lost."""
        wd, mask, _cookie, name = event
        if mask & (IN.Q_OVERFLOW | IN.UNMOUNT):
            return True
        if mask & IN.IGNORED:  # the kernel dropped this watch (dir deleted or rm_watch)
            self._dirs.pop(wd, None)
            return False
        parent = self._dirs.get(wd)
        if parent is None:  # late event from a watch already forgotten
            return False
        if mask & (IN.DELETE_SELF | IN.MOVE_SELF):
            # For subdirectories the parent's DELETE/MOVED_FROM carries the
            # name; only root has no watched parent to tell us.
            return parent == ""
        if not name:  # e.g. ATTRIB on the directory itself; the parent reports it too
            return False
        path = _join(parent, name)
        if path == GIT_DIR:
            return False
        changed.add(path)
        if mask & (IN.CREATE | IN.MODIFY) and not mask & IN.ISDIR:
            self._writing.setdefault(path, time.monotonic())
        elif mask & (IN.CLOSE_WRITE | IN.DELETE | IN.MOVED_FROM):
            self._writing.pop(path, None)
        if mask & IN.ISDIR and mask & (IN.DELETE | IN.MOVED_FROM):
            self._unwatch_tree(path)
        elif mask & IN.ISDIR and mask & (IN.CREATE | IN.MOVED_TO):
            self._watch_tree(path, changed)
        return False

    def _watch_tree(self, top, changed):
        """Watch `top` and every directory below it, adding every entry to `changed`.

        Watch first, list second: an entry created before the watch existed
        is in the listing, one created after produces an event."""
        pending = [top]
        while pending:
            rel = pending.pop()
            try:
                wd = _check("inotify_add_watch", self._fd, os.fsencode(self._abspath(rel)), _DIR_MASK)
                with os.scandir(self._abspath(rel)) as entries:
                    entries = list(entries)
            except _UNWATCHABLE:
                continue
            self._dirs[wd] = rel
            for entry in entries:
                path = _join(rel, entry.name)
                if path == GIT_DIR:
                    continue
                changed.add(path)
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)

    def _unwatch_tree(self, top):
        """Forget `top` and its subdirectories. Removing the kernel watch too
        matters for renames: the moved dir keeps its watch, and if it reappears
        elsewhere in the tree add_watch must hand out a wd for the new path."""
        prefix = top + "/"
        for wd, rel in list(self._dirs.items()):
            if rel == top or rel.startswith(prefix):
                del self._dirs[wd]
                try:
                    _check("inotify_rm_watch", self._fd, wd)
                except OSError:
                    pass  # EINVAL: the kernel already dropped it (dir deleted)


# -- kqueue -------------------------------------------------------------------

_KQ_FILTER_VNODE = getattr(select, "KQ_FILTER_VNODE", -4)
_KQ_EV_ADD = getattr(select, "KQ_EV_ADD", 0x0001)
_KQ_EV_CLEAR = getattr(select, "KQ_EV_CLEAR", 0x0020)
_NOTE_DELETE = getattr(select, "KQ_NOTE_DELETE", 0x0001)
_NOTE_WRITE = getattr(select, "KQ_NOTE_WRITE", 0x0002)
_NOTE_EXTEND = getattr(select, "KQ_NOTE_EXTEND", 0x0004)
_NOTE_ATTRIB = getattr(select, "KQ_NOTE_ATTRIB", 0x0008)
_NOTE_LINK = getattr(select, "KQ_NOTE_LINK", 0x0010)
_NOTE_RENAME = getattr(select, "KQ_NOTE_RENAME", 0x0020)
_KQ_FFLAGS = _NOTE_WRITE | _NOTE_EXTEND | _NOTE_DELETE | _NOTE_RENAME | _NOTE_ATTRIB | _NOTE_LINK
# O_EVTONLY (macOS) opens for notification only, so watching does not keep
# a volume from being unmounted. Python only exposes it from 3.13 on.
_O_EVTONLY = getattr(os, "O_EVTONLY", 0x8000 if sys.platform == "darwin" else 0)
_KQ_MAX_EVENTS = 1024


def kevents_to_changes(events, fd_paths, is_dir):
    """Translate kevents into (changed_paths, dirs_to_rescan).

    A directory's NOTE_WRITE/NOTE_LINK only says "entries changed", so the
    directory must be re-listed to learn which. A deleted or renamed entry
    is itself changed, and its parent is re-listed so its fd is closed and a
    replacement (if any) gets watched. Root ("") is never a changed path."""
    changed, rescan = set(), set()
    for event in events:
        path = fd_paths.get(event.ident)
        if path is None:
            continue
        gone = event.fflags & (_NOTE_DELETE | _NOTE_RENAME)
        if is_dir[event.ident] and event.fflags & (_NOTE_WRITE | _NOTE_LINK):
            rescan.add(path)
        if path and (gone or not is_dir[event.ident]):
            changed.add(path)
        if gone:
            rescan.add(path.rpartition("/")[0])
    return changed, rescan


def _list_dir(abspath, skip_git):
    """{name: (inode, is_dir, is_file)} for one directory, without following symlinks."""
    with os.scandir(abspath) as entries:
        return {e.name: (e.inode(), e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False))
                for e in entries if not (skip_git and e.name == GIT_DIR)}


class KqueueWatcher(Watcher):
    """kqueue back end. Holds one open fd per file and directory, so large trees
    need a raised `ulimit -n`; running out raises GtfcError (EMFILE)."""

    backend = "kqueue"

    def __init__(self, root):
        self.root = os.path.realpath(root)  # entries are never followed, but root may be a link
        self._kq = select.kqueue()
        self._fds = {}       # rel path -> fd
        self._paths = {}     # fd -> rel path
        self._is_dir = {}    # fd -> bool
        self._listings = {}  # rel dir -> _list_dir() result
        try:
            self._watch("", True)
            self._relist("", set())
        except BaseException:
            self.close()
            raise

    def fileno(self):
        return self._kq.fileno()

    def read(self, timeout):
        events = self._kq.control(None, _KQ_MAX_EVENTS, max(timeout, 0))
        batch = events
        while len(batch) == _KQ_MAX_EVENTS:  # drain, without waiting again
            batch = self._kq.control(None, _KQ_MAX_EVENTS, 0)
            events.extend(batch)
        changed, dirs = kevents_to_changes(events, self._paths, self._is_dir)
        rescan = False
        for rel in sorted(dirs):  # parents first, so a vanished subtree is forgotten once
            rescan |= self._relist(rel, changed)
        return changed, rescan

    def close(self):
        for fd in self._paths:
            os.close(fd)
        self._fds.clear()
        self._paths.clear()
        self._is_dir.clear()
        self._listings.clear()
        self._kq.close()

    def _abspath(self, rel):
        return os.path.join(self.root, rel) if rel else self.root

    def _watch(self, rel, is_dir):
        try:
            fd = os.open(self._abspath(rel), os.O_RDONLY | _O_EVTONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except _UNWATCHABLE:
            return
        except OSError as e:
            raise _os_error("open", e.errno, self.root) from e
        self._fds[rel], self._paths[fd], self._is_dir[fd] = fd, rel, is_dir
        kev = select.kevent(fd, filter=_KQ_FILTER_VNODE, flags=_KQ_EV_ADD | _KQ_EV_CLEAR, fflags=_KQ_FFLAGS)
        self._kq.control([kev], 0, 0)

    def _forget(self, top):
        """Close the fds of `top` and everything below it (closing unregisters the kevent)."""
        prefix = top + "/"
        for rel in [r for r in self._fds if r == top or r.startswith(prefix)]:
            fd = self._fds.pop(rel)
            del self._paths[fd], self._is_dir[fd]
            os.close(fd)
            self._listings.pop(rel, None)

    def _relist(self, top, changed):
        """Diff `top` (and any new subdirectories) against the remembered
        listing; report and watch new entries, forget removed ones. An entry
        whose inode changed was replaced (e.g. renamed over) and is redone.
        Returns True if root itself cannot be listed any more."""
        pending = [top]
        while pending:
            rel = pending.pop()
            if rel not in self._fds:
                continue  # forgotten earlier in this batch
            try:
                current = _list_dir(self._abspath(rel), skip_git=(rel == ""))
            except _UNWATCHABLE:
                if rel == "":
                    return True
                self._forget(rel)
                continue
            previous = self._listings.get(rel, {})
            self._listings[rel] = current
            for name in previous.keys() | current.keys():
                if previous.get(name) == current.get(name):
                    continue
                path = _join(rel, name)
                changed.add(path)
                self._forget(path)
                if name in current:
                    _ino, is_dir, is_file = current[name]
                    if is_dir or is_file:
                        self._watch(path, is_dir)
                    if is_dir:
                        pending.append(path)
        return False


# -- polling ------------------------------------------------------------------

def snapshot_tree(root):
    """{relative path: (st_mtime_ns, st_size, st_ino, st_mode)} for everything
    under root except .git, without following symlinks. Entries that vanish
    mid-walk are skipped; an unreadable root raises."""
    snapshot = {}
    pending = [""]
    while pending:
        rel = pending.pop()
        try:
            with os.scandir(os.path.join(root, rel) if rel else root) as entries:
                entries = list(entries)
        except _UNWATCHABLE:
            if rel == "":
                raise
            continue
        for entry in entries:
            path = _join(rel, entry.name)
            if path == GIT_DIR:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except _UNWATCHABLE:
                continue
            snapshot[path] = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                pending.append(path)
    return snapshot


def diff_snapshots(old, new):
    """Paths added, removed or changed between two snapshot_tree() results."""
    return {path for path in old.keys() | new.keys() if old.get(path) != new.get(path)}


class PollWatcher(Watcher):
    backend = "poll"

    def __init__(self, root, poll_interval=1.0):
        self.root = os.path.realpath(root)  # entries are never followed, but root may be a link
        self.poll_interval = poll_interval
        self._snapshot = snapshot_tree(self.root)
        self._next_poll = time.monotonic() + poll_interval

    def read(self, timeout):
        wait = self._next_poll - time.monotonic()
        if wait > timeout:
            time.sleep(max(timeout, 0))
            return set(), False
        time.sleep(max(wait, 0))
        self._next_poll = time.monotonic() + self.poll_interval
        try:
            snapshot = snapshot_tree(self.root)
        except _UNWATCHABLE:
            return set(), True  # root vanished; the caller decides what that means
        changed = diff_snapshots(self._snapshot, snapshot)
        self._snapshot = snapshot
        return changed, False

    def close(self):
        self._snapshot = {}


# Pipeline 1, watch: the loop #################################################
# Entry: cmd_watch starts a RepoWatch per repo (RepoWatch.run → watch).  In: the
# back end's changed paths, the doorbell's senders (peers that pushed), the clock.
# Out: integrate_and_spread — a commit of those paths and a merge of what came
# (Pipeline 2 and 5) — and a wake-up for each PeerLink, which sends (Pipeline 3),
# retries unreachable peers with backoff and fetches on the anti-entropy timer.

def repo_setting(repo: Repo, name: str, default: float) -> float:
    """A number from the repo's local git config (gtfc.NAME), never synced."""
    text = repo.setting(name)
    try:
        value = float(text) if text else default
    except ValueError:
        raise GtfcError(f"gtfc.{name} = {text!r} in {repo.path}/.git/config is not a "
                        f"number of seconds — fix it with git config gtfc.{name} N") from None
    return max(1.0, value)


def next_delay(delay: float, ceiling: float) -> float:
    """Backoff for an unreachable peer: 1 s, 2 s, 4 s, … up to ceiling.  The first
    waits are short because most outages are (a blip, an sshd restart, a partition
    that heals): after a 5 s first wait, a peer back a moment after we gave up got
    our changes only then; each of those peers was the last to converge in a
    healing cluster.  A peer that does not answer at all costs the connect timeout
    (5 s) per try anyway, so the short waits add two tries to a long outage."""
    return min(ceiling, max(1.0, delay * 2))


class PeerLink(threading.Thread):
    """All the watcher does with one peer, in a thread of its own, so that a peer
    that is down never delays the others: send our head when it changes, retry
    with backoff while the peer is unreachable, fetch from it on the anti-entropy
    timer (and merge what came)."""

    def __init__(self, watch: "RepoWatch", name: str):
        super().__init__(daemon=True, name=f"gtfc-{name}")
        self.watch, self.name = watch, name
        self.wanted = threading.Event()     # our head changed: send it
        self.heard = threading.Event()      # the peer pushed to us: it is back
        self.delay, self.next_try = 0.0, 0.0
        self.next_fetch = time.monotonic()  # fetch once at start
        self.gone = False                   # no longer a member
        self.session = PushSession()

    def run(self) -> None:
        try:
            self.loop()
        finally:
            self.session.close()

    def loop(self) -> None:
        stop = self.watch.stop
        while not stop.is_set() and not self.gone:
            if not self.watch.present.is_set():             # the folder vanished
                stop.wait(VANISHED_POLL)
                continue
            now = time.monotonic()
            if now < self.next_try:                         # backing off, unless
                if self.heard.wait(self.next_try - now):    # the peer pushed to us
                    self.next_try = 0.0
                continue
            if now >= self.next_fetch:
                self.next_fetch = now + self.watch.pull_interval
                if self.session.idle() >= self.watch.pull_interval:
                    self.session.close()        # the peer's gtfc-shell need not wait
                self.watch.repo.read_only_peers.discard(self.name)
                if not self.pushed_lately() and not self.attempt(self.fetch):
                    continue                # unreachable: back off before sending
            if self.wanted.is_set() or self.delay:
                self.wanted.clear()
                self.attempt(self.send)
            wake = min(self.next_fetch, self.next_try) if self.delay else self.next_fetch
            self.wanted.wait(max(0.0, wake - time.monotonic()))

    def attempt(self, step) -> bool:
        try:
            failure = step()
        except GtfcError as e:
            failure = str(e)
        if failure and not self.watch.folder_present():
            return False                    # not the peer's fault: see wait_for_folder
        record = peer_record(self.watch.repo, self.name, "failing")
        if failure:
            self.heard.clear()              # only a push after this failure says it is back
            self.delay = next_delay(self.delay, self.watch.retry_max)
            self.next_try = time.monotonic() + self.delay
            self.watch.log(f"{failure} (next try in {self.delay:.0f} s)", Log.ERROR)
            write_file_atomic(record, f"{failure}\n{time.time() + self.delay:.0f}\n")
            return False
        if self.delay:
            self.watch.log(f"{self.name} is reachable again")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(record)
        self.delay = self.next_try = 0.0
        return True

    def heard_from(self) -> None:
        """The peer pushed to us, so it is reachable: a backoff ends now.  After an
        outage (retryMax: 5 minutes) our changes reach it at once, not at the next
        try, nor at its next pull."""
        self.heard.set()

    def wake(self) -> None:
        """Have the thread look at once (the watch stops, or the peer is no member)."""
        self.wanted.set()
        self.heard.set()

    def pushed_lately(self) -> bool:
        """Did the peer push to us within the pull interval?  Then the pull would
        bring nothing its own sender will not: a peer that pushes retries until
        its head is here.  The pull is for peers that cannot push to us."""
        repo = self.watch.repo
        try:
            stamp = os.stat(os.path.join(repo.git_dir, INBOX, self.name)).st_mtime
        except OSError:
            return False                    # never, or the ref is packed: pull
        with contextlib.suppress(OSError):  # our own pull wrote it: that was no push
            if os.stat(peer_record(repo, self.name, "pulled")).st_mtime >= stamp:
                return False
        return time.time() - stamp < self.watch.pull_interval

    def peer(self) -> Optional[Node]:
        return self.watch.nodes.get(self.name)

    def send(self) -> Optional[str]:
        node = self.peer()
        if node is None or self.name in self.watch.repo.read_only_peers:
            return None
        started = time.monotonic()

        def sent(oid):
            how = ", push session" if self.session.sent_last else ""
            took = (time.monotonic() - started) * 1000
            self.watch.log(f"sent {short(oid)} to {self.name} ({took:.0f} ms{how})")

        failure = push_to_peer(self.watch.repo, node, on_sent=sent, session=self.session)
        if self.name in self.watch.repo.read_only_peers:
            self.watch.log(read_only_note(self.name))      # in the log, with the time
        return failure

    def fetch(self) -> Optional[str]:
        node = self.peer()
        if node is None:
            return None
        failure = fetch_from_peer(self.watch.repo, node)
        if not failure:
            self.watch.log(f"pulled from {self.name}", Log.DETAIL)
            # The watcher's own round merges it, with whatever else came meanwhile:
            # links that each ran a round queued for the repo lock, one behind the
            # other, for tens of seconds when a partition healed.
            if not ring_doorbell(self.watch.repo, self.name):
                self.watch.guarded(self.watch.integrate_and_spread)  # not the peer's fault
        return failure


class RepoWatch:
    """The watch loop of one repo: file events → debounce → integrate → tell the
    peer links, which send in parallel."""

    def __init__(self, repo: Repo, make_watcher, stop: threading.Event):
        self.repo, self.make_watcher, self.stop = repo, make_watcher, stop
        self.watcher = None
        self.present = threading.Event()    # the folder is there (not unmounted, moved)
        self.present.set()
        self.doorbell = Doorbell(repo)
        self.pull_interval = repo_setting(repo, "pullInterval", PULL_INTERVAL)
        self.retry_max = repo_setting(repo, "retryMax", RETRY_MAX)
        self.nodes: Dict[str, Node] = {}
        self.links: Dict[str, PeerLink] = {}
        self.mutex = threading.Lock()
        self.attention = Attention(repo)
        self.upkeep: Optional[threading.Thread] = None

    def log(self, message: str, level: int = Log.EVENT) -> None:
        LOG(f"{os.path.basename(self.repo.path)}: {message}", level)

    def integrate_and_spread(self, senders: Optional[set] = None,
                             paths: Optional[set] = None) -> None:
        """Merge what arrived (from senders, when the doorbell rang) and local edits
        (among paths, if known); if that made a head no peer has (or changed
        membership), have every link send it."""
        started = time.monotonic()
        try:
            result = integrate(self.repo, paths=paths, on_commit=self.spread)
        except RepoDamaged:
            raise
        except GtfcError:
            self.spread(self.repo.head())   # our commits go out all the same
            raise
        with self.mutex:
            self.refresh_links()    # membership may also change in a background integration
            for line in integration_lines(result, started, senders):
                self.log(line)
        self.spread(None if result.members_changed else result.new)

    def heard_from(self, senders: set) -> None:
        with self.mutex:
            for name in senders & self.links.keys():
                self.links[name].heard_from()

    def spread(self, head: Optional[str]) -> None:
        """Have every link send our head if no peer has it (or, head None, anyway)."""
        with self.mutex:
            if head is None or is_novel(self.repo, head):
                for link in self.links.values():
                    link.wanted.set()

    def start_links(self) -> None:
        with self.mutex:
            self.refresh_links()            # each fetches from its peer first

    def refresh_links(self) -> None:
        self.nodes = {p.name: p for p in peers(self.repo)}
        for name in set(self.links) - set(self.nodes):
            link = self.links.pop(name)
            link.gone = True
            link.wake()                             # so that it sees it, and ends
        for name in set(self.nodes) - set(self.links):
            self.links[name] = PeerLink(self, name)
            self.links[name].start()

    def run(self, wake_fd: int) -> None:
        while not self.stop.is_set():
            try:
                with self.make_watcher() as self.watcher:
                    self.log(f"watching with {self.watcher.backend} as node {self.repo.node}")
                    self.watch(wake_fd)
            except WatchLimit as e:     # a new folder met the limit: poll from now on
                self.log(str(e), Log.ERROR)
                self.make_watcher = functools.partial(self.make_watcher, force_poll=True)
                continue
            if not self.stop.is_set():
                self.wait_for_folder()
        for link in self.links.values():
            link.wake()

    def folder_present(self) -> bool:
        return os.path.isfile(os.path.join(self.repo.git_dir, "HEAD"))

    def wait_for_folder(self) -> None:
        """The folder vanished (unmounted, moved, deleted): sync nothing from here —
        an empty mount point must not read as "every file deleted" — until it is
        back, then start over with fresh watches (it may be another file system)."""
        self.present.clear()
        self.log(f"{self.repo.path} vanished (unmounted, moved or deleted?): nothing "
                 "is synced from here until it is back; peers keep their files",
                 Log.ERROR)
        while not self.stop.wait(VANISHED_POLL):
            if self.folder_present():
                self.doorbell.close()
                self.doorbell = Doorbell(self.repo)
                self.log(f"{self.repo.path} is back: syncing again")
                self.present.set()
                return

    def watch(self, wake_fd: int) -> None:
        """Until stopped or the folder vanishes: debounce events, integrate, spread."""
        self.guarded(self.start_links)      # before the first round: its commit of what
        self.guarded(self.integrate_and_spread)     # changed while we were down leaves at once
        first = last = None
        pending: Optional[set] = set()      # paths changed since the last commit; None: any
        last_upkeep = last_look = last_follow = time.monotonic()
        poller = select.poll()      # not select(): kqueue can hold fds above 1023
        for fd in (wake_fd, self.watcher.fileno(), self.doorbell.fileno()):
            if fd is not None:
                poller.register(fd, select.POLLIN)
        # Idle, an event-driven watcher sleeps until something happens, or until the
        # next anti-entropy round, when it also checks that the folder is there.
        tick = POLL_TICK if self.watcher.fileno() is None else self.pull_interval
        while not self.stop.is_set():
            # Quiet long enough ends a burst; less when every file written was
            # closed (an editor's save dance keeps a file open until it is done).
            quiet = SETTLED if self.watcher.settled() else DEBOUNCE
            timeout = min(last + quiet, first + DEBOUNCE_CAP) - time.monotonic() \
                if first else tick
            timeout = min(timeout, FOLLOW_TICK if self.repo.following else tick)
            poller.poll(max(0.0, timeout) * 1000)
            if self.stop.is_set() or not self.folder_present():
                return
            paths, rescan = self.watcher.read(0)
            now = time.monotonic()
            if paths or rescan:
                first, last = first or now, now
                # A changed .gitignore may un-ignore files anywhere: look everywhere.
                if rescan or any(p.rsplit("/", 1)[-1] == ".gitignore" for p in paths):
                    pending = None
                elif pending is not None:
                    pending |= set(paths)
            senders = self.doorbell.senders()
            self.heard_from(senders)
            quiet = SETTLED if self.watcher.settled() else DEBOUNCE
            due = first and (now - last >= quiet or now - first >= DEBOUNCE_CAP)
            if not (first or senders) and now - last_upkeep >= self.pull_interval:
                last_upkeep = now                   # quiet for a while: upkeep
                self.housekeep()
                self.attention.check()
            look = now - last_look >= self.pull_interval    # the whole tree, for what no
            if look:                                        # event told (anti-entropy)
                pending, last_look = None, now
            follow = self.repo.following and now - last_follow >= FOLLOW_TICK
            if follow:                  # a replaced file still open: is it closed now?
                last_follow = now
            if senders or due or look or follow:    # a peer pushed, or a burst ended
                if self.guarded(lambda: self.integrate_and_spread(senders, pending)):
                    pending = set()
                if due:
                    first = last = None

    def housekeep(self) -> None:
        """housekeep in a thread of its own: a repack must not hold up a change."""
        if not (self.upkeep and self.upkeep.is_alive()):
            self.upkeep = threading.Thread(target=self.guarded, daemon=True,
                                           args=(lambda: housekeep(self.repo),))
            self.upkeep.start()

    def guarded(self, step) -> bool:
        """A failed round is logged and retried later; it never stops the watcher."""
        try:
            step()
            return True
        except GtfcError as e:
            self.log(str(e), Log.ERROR)
            return False


class Attention:
    """gtfc.onAttention: a command the watcher runs when gtfc status newly needs
    attention, with its reasons on stdin, one per line.  Checked when idle, every
    pull interval, in a thread of its own (status asks each peer, which may take
    seconds).  A reason counts as new when status did not give it, numbers aside,
    at the last check; a peer must be unreachable at two checks in a row (a
    reboot is no news)."""

    def __init__(self, repo: Repo):
        self.repo = repo
        self.thread: Optional[threading.Thread] = None
        self.last: set = set()          # the reasons at the last check, numbers aside
        self.told: set = set()          # those the command has been told

    def check(self) -> None:
        if self.repo.setting("onAttention") and not (self.thread and self.thread.is_alive()):
            self.thread = threading.Thread(target=self.tell, daemon=True)
            self.thread.start()

    def tell(self) -> None:
        try:
            reasons = repo_status(self.repo)["attention"]
        except GtfcError as e:
            reasons = [str(e)]
        kinds = {re.sub(r"\d+(\.\d+)?", "N", r): r for r in reasons}
        settled = {k for k in kinds if not k.endswith(" unreachable") or k in self.last}
        self.last = set(kinds)
        if settled - self.told:
            told = [kinds[k] for k in sorted(settled)]
            LOG(f"{os.path.basename(self.repo.path)}: needs attention, running gtfc."
                f"onAttention: {'; '.join(told)}")
            run_hook(self.repo, "onAttention", [reason.encode() for reason in told])
        self.told = settled


@contextlib.contextmanager
def watch_lock(repo: Repo):
    repo.make_state_dir()
    with open(os.path.join(repo.state_dir, "watch.pid"), "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            raise GtfcError(f"gtfc-watch is already running on {repo.path} (pid {pid}) "
                            "— stop that one first") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


# Pipeline 2, commit ##########################################################
# Entry: commit_local(repo, paths), run by integrate_locked.  In: the paths the
# watcher saw change (None: look everywhere).  Out: a commit on HEAD holding them
# and their metadata records, or nothing; files over gtfc.maxFileSize stay here.

# Metadata: modes, owners and empty folders.  Git keeps only the executable bit.
# So each path whose metadata is not the default gets a small tracked file of its
# own under META_DIR ("0600", or "0640 www-data:adm" when the owner or group is
# not the synced folder's own), which commits, travels and merges like any file,
# by the same per-path rule; an empty folder gets one too, so that it exists on
# every host.  Only paths the watcher saw change are looked at (the whole tree
# once per process: see record_metadata).  A file .gtfc/metadata holding "off"
# turns it off for the cluster: then only git's executable bit travels.
META_DIR = ".gtfc/meta"
META_SETTING = ".gtfc/metadata"
FOLDER_DEFAULT = 0o755
FILE_DEFAULTS = (0o644, 0o755)          # without, with the executable bit
META_RE = re.compile(r"([0-7]{4})(?: (\S+):(\S+))?\n?")


def metadata_kept(repo: Repo) -> bool:
    try:
        with open(os.path.join(repo.path, META_SETTING)) as f:
            return f.read().strip().lower() not in ("off", "no", "false")
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return True


def meta_path(path: bytes, folder: bool) -> bytes:
    """a/b -> .gtfc/meta/_a/_b, and the folder a/b's own: .gtfc/meta/_a/_b/=
    (every name gets a "_", so a folder's own file meets no user's name)."""
    return b"/".join([META_DIR.encode()] + [b"_" + part for part in path.split(b"/")] +
                     ([b"="] if folder else []))


def meta_target(meta: bytes) -> Optional[Tuple[bytes, bool]]:
    """The other way: (path, it is a folder's own), None if meta is not one."""
    prefix = META_DIR.encode() + b"/"
    if not meta.startswith(prefix):
        return None
    parts = meta[len(prefix):].split(b"/")
    folder = parts[-1] == b"="
    parts = parts[:-1] if folder else parts
    if not parts or not all(len(p) > 1 and p.startswith(b"_") for p in parts):
        return None
    return b"/".join(p[1:] for p in parts), folder


def is_gtfc_own(path: bytes) -> bool:
    return path == GTFC_FOLDER or path.startswith(GTFC_FOLDER + b"/")


def describe_metadata(st: os.stat_result, root: os.stat_result, empty: bool) -> Optional[bytes]:
    """What META_DIR keeps for a file or folder (lstat st; root: the synced
    folder's), None for the default: 644 or 755 by git's executable bit, folders
    755, owned like the synced folder, and not an empty folder."""
    import grp, pwd                     # see "Imported where used"
    mode = stat.S_IMODE(st.st_mode)
    folder = stat.S_ISDIR(st.st_mode)
    default = FOLDER_DEFAULT if folder else FILE_DEFAULTS[bool(mode & 0o100)]
    user = group = ""
    if (st.st_uid, st.st_gid) != (root.st_uid, root.st_gid):
        try:
            user = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            user = f"#{st.st_uid}"      # no name here: never applied as a number
        try:
            group = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            group = f"#{st.st_gid}"
    if mode == default and not user and not (folder and empty):
        return None
    return meta_text(mode, user, group)


def meta_text(mode: int, user: str, group: str) -> bytes:
    """A META_DIR file's one line: "0640", or "0640 www-data:adm" (META_RE)."""
    return f"{mode:04o}{f' {user}:{group}' if user else ''}\n".encode()


def as_recorded(repo: Repo, path: bytes, st: os.stat_result,
                text: Optional[bytes]) -> Optional[bytes]:
    """describe_metadata's text for path, but where this host cannot hold its record
    as written (an owner it cannot set: gtfc not root, or no such user or group
    here; setuid when not root), the record stands while the file is as apply_one
    left it (applied_mode), and a mode set here since goes with the record's
    owner.  Recorded as found, the first walk of that host's next process dropped
    the owner (or setuid) for the whole cluster, and made the file private on
    every host."""
    import grp, pwd                     # see "Imported where used"
    record = read_meta(repo, meta_path(path, stat.S_ISDIR(st.st_mode)))
    if record is None:
        return text
    mode, user, group = record
    settable = not user or os.geteuid() == 0
    if user and settable:
        try:
            pwd.getpwnam(user), grp.getgrnam(group)
        except KeyError:
            settable = False
    held, now = applied_mode(mode, st, owner_set=settable), stat.S_IMODE(st.st_mode)
    if settable and (held & ~0o100) == (mode & ~0o100):
        # Held as written: the file is the record, but for the executable bit, which
        # is git's (a chmod +x merged with a chmod 600: 0700, recorded again as a
        # change by every host, though the record gives it already).
        same = text == meta_text((mode & ~0o100) | (now & 0o100), user, group)
        return meta_text(mode, user, group) if same else text
    if not settable and st.st_uid not in (os.geteuid(), os.lstat(repo.path).st_uid):
        return text                     # a chown here since: the file is the record
    return meta_text(mode if now == held else now, user, group)


def record_metadata(repo: Repo, paths: Iterable[bytes]) -> List[bytes]:
    """Bring META_DIR's files in the working tree in line with paths (and their
    folders, which may have become empty or stopped being so).  The first time in
    a process, every path: a chmod made while no gtfc watched is seen then — unless
    another process watches the repo (it sees chmods: a gtfc-push then costs no
    walk of a big tree).  Returns the META_DIR paths written or removed."""
    if not metadata_kept(repo):
        return []
    if not repo.metadata_walked:
        repo.metadata_walked = True
        if watcher_pid(repo) in (None, os.getpid()):
            return record_all_metadata(repo)
    root = os.lstat(repo.path)
    looked = set()
    for path in paths:
        looked.add(path)
        looked.update(folders_of(path))
    changed: List[bytes] = []
    for path in sorted(p for p in looked if not is_gtfc_own(p)):
        full = inside(repo, path)
        if full is None:
            continue
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        folder = st is not None and stat.S_ISDIR(st.st_mode)
        regular = st is not None and stat.S_ISREG(st.st_mode)
        empty = folder and is_empty_folder(full)
        if folder and os.path.exists(os.path.join(full, ".git")):
            continue                        # a nested repo: not ours
        if not folder:                      # gone, or no longer a folder: its files' too
            changed += drop_meta_folder(repo, meta_path(path, False))
        # The file's record first: a file's .gtfc/meta/_k is where the folder k's
        # record folder goes (and the other way, drop_meta_folder above).
        for own, wanted in ((False, regular), (True, folder)):
            text = as_recorded(repo, path, st, describe_metadata(st, root, empty)) \
                if wanted else None
            if write_meta_file(repo, meta_path(path, own), text):
                changed.append(meta_path(path, own))
    return changed


def is_empty_folder(full: str) -> bool:
    with os.scandir(full) as entries:
        return not any(True for _ in entries)


def record_all_metadata(repo: Repo) -> List[bytes]:
    """record_metadata for the whole tree, in one walk: a file is opened only where
    META_DIR has one or the path's metadata is not the default (100,000 files with
    default modes: their lstat, and nothing else)."""
    root = os.lstat(repo.path)
    present = set()
    for folder, _dirs, files in os.walk(os.path.join(repo.path, META_DIR)):
        rel = os.fsencode(os.path.relpath(folder, repo.path))
        present.update(rel + b"/" + os.fsencode(name) for name in files)
    recorded = {target[0] for target in map(meta_target, present) if target}
    wanted = {}
    for path, st, empty in walk_tree(repo.path, b""):
        text = describe_metadata(st, root, empty)
        if path in recorded:
            text = as_recorded(repo, path, st, text)
        if text is not None:
            wanted[meta_path(path, stat.S_ISDIR(st.st_mode))] = text
    return [meta for meta in sorted(present | set(wanted))
            if write_meta_file(repo, meta, wanted.get(meta))]


def walk_tree(top: str, rel: bytes):
    """(path, lstat, is an empty folder) of every file and folder below top, but
    .git, .gtfc, nested repos and what symlinks point to."""
    with os.scandir(top) as listing:
        entries = list(listing)
    for entry in entries:
        path = rel + b"/" + os.fsencode(entry.name) if rel else os.fsencode(entry.name)
        if not rel and path in (b".git", GTFC_FOLDER):
            continue
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            inner = os.listdir(entry.path)
            if ".git" in inner:
                continue                    # a nested repo: not ours
            yield path, st, not inner
            yield from walk_tree(entry.path, path)
        elif stat.S_ISREG(st.st_mode):
            yield path, st, False


def write_meta_file(repo: Repo, meta: bytes, text: Optional[bytes]) -> bool:
    """Make META_DIR's file meta hold text (None: no file); True if it changed."""
    full = os.path.join(repo.path, os.fsdecode(meta))
    try:
        with open(full, "rb") as f:
            if f.read() == text:
                return False
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        if text is None:
            return False
    if text is None:
        os.unlink(full)
        return True
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(text)
    return True


def drop_meta_folder(repo: Repo, meta: bytes) -> List[bytes]:
    """Remove META_DIR's folder for a path that is no folder now: its files'."""
    import shutil                       # see "Imported where used"
    full = os.path.join(repo.path, os.fsdecode(meta))
    if not os.path.isdir(full) or os.path.islink(full):
        return []
    gone = [os.fsencode(os.path.relpath(os.path.join(folder, name), repo.path))
            for folder, _dirs, files in os.walk(full) for name in files]
    shutil.rmtree(full)
    return gone


def commit_local(repo: Repo, paths: Optional[set] = None) -> bool:
    """Commit what changed in the working tree, except files over gtfc.maxFileSize,
    which stay here (see hold_back); True if a commit was made.  paths: where the
    watcher saw changes, so that an edit does not cost a walk of the whole tree;
    None: look everywhere."""
    limit = max_file_size(repo)        # checked first: a typo there is said at once
    if paths is not None and len(paths) > MAX_LISTED_PATHS:
        paths = None
    meta: List[bytes] = []
    if paths:
        meta = record_metadata(repo, map(os.fsencode, paths))
        paths = echoes_removed(repo, paths)
        if not paths and not meta:
            return False
    changed = worktree_changes(repo, paths)
    # And the files found under those paths: a folder made with files in it (cp -a,
    # tar x) may reach the watcher as the folder alone, its files written before
    # its watch began; committed without their modes, a 600 file arrived on peers
    # readable by all until the next commit.
    named = set(map(os.fsencode, paths or ()))
    found = record_metadata(repo, [path for path in changed if path not in named])
    meta = sorted(set(meta) | set(found))
    changed = sorted(set(changed) | set(meta))
    if not changed:
        return False
    held = hold_back(repo, changed, limit, everywhere=paths is None)
    listed = [p for p in changed if p not in held] \
        if len(changed) <= MAX_LISTED_PATHS else None
    added = stage(repo, listed, held)
    if added is None:
        return False                    # every change is held back
    if exclude_nested_repos(repo, added.stderr) or b"beyond a symbolic link" in added.stderr \
            or b"did not match any files" in added.stderr:
        # A folder replaced by a symlink, a file removed since git status saw it (its
        # pathspec fails the whole add): look at all.
        added = stage(repo, None, held)
    if added.returncode != 0:
        if b"index.lock" in added.stderr:
            raise GtfcError(f"{repo.git_dir}/index.lock exists: another git is working "
                            "in this repo — if none is, remove that file")
        warn(f"{repo.path}: some files could not be read and stay uncommitted: "
             f"{last_line(added.stderr)}")
    # Plumbing, not `git commit`, which would look at every file once more (a
    # tenth of a second in a 100,000-file tree) to word a summary nobody reads.
    parent = repo.head_if_any()
    base = parent or repo.out("hash-object", "-t", "tree", os.devnull)
    tree = repo.out("write-tree")
    changes = tree_changes(repo, base, tree)
    looked = named | set(changed)
    late = [c for c in changes if c.path not in looked and not is_gtfc_own(c.path)]
    if late and settle_late_paths(repo, parent, late, limit):
        tree = repo.out("write-tree")
        changes = tree_changes(repo, base, tree)
    if not changes:
        return False
    check_mass_delete(repo, vanished(changes))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(repo.state_dir, "mass-delete"))
    names = [os.fsdecode(c.path) for c in changes]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    message = f"{repo.node}: {shown}"
    commit = repo.out("-c", f"user.name={repo.node}", "-c", f"user.email=gtfc@{repo.node}",
                      "commit-tree", "--no-gpg-sign", tree, *(["-p", parent] if parent else []),
                      "-m", message)
    repo.git("update-ref", "-m", f"commit: {message}", "HEAD", commit, parent or "")
    if parent and not any(c.path.startswith(NODES_DIR.encode() + b"/") for c in changes):
        same_members(repo, parent, commit)
    return True


MAX_LISTED_PATHS = 1000     # beyond this, naming paths to git costs more than a walk


def settle_late_paths(repo: Repo, parent: Optional[str], late: List[Change],
                      limit: int) -> bool:
    """The changes git add took that no metadata walk or size check saw: unlisted (a
    walk of all), it takes what is there when it runs, also a file written since git
    status looked.  Each stays in this commit with its mode (or peers would write a
    600 file readable by all until the next) where the path is still as git took it
    (a file or symlink, or gone for a delete) and within gtfc.maxFileSize; else it
    goes back to the parent's entry: the watcher saw the write, and the next round
    takes it whole.  True if the index changed."""
    def as_taken(c: Change) -> bool:
        try:
            st = os.lstat(os.path.join(repo.path, os.fsdecode(c.path)))
        except (FileNotFoundError, NotADirectoryError):
            return c.kind == "D"
        return c.kind != "D" and (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode))
    taken = [c.path for c in late if as_taken(c)]
    back = {c.path for c in late} - set(taken) | set(hold_back(repo, taken, limit, False))
    if back:
        repo.git("reset", "-q", *([parent] if parent else []), "--pathspec-from-file=-",
                 "--pathspec-file-nul", input=b"\0".join(sorted(back)),
                 env={"GIT_LITERAL_PATHSPECS": "1"})
    meta = record_metadata(repo, [path for path in taken if path not in back])
    staged = stage(repo, meta, []) if meta else None
    if staged and staged.returncode != 0:
        raise GtfcError(f"could not stage the modes of {repo.path}'s new files: "
                        f"{last_line(staged.stderr)}{disk_full_hint(staged.stderr)}")
    return bool(back or meta)


def echoes_removed(repo: Repo, paths: set) -> set:
    """paths without those that are just as our last checkout wrote them: the
    watcher sees our own writes, and a git status for each peer's change would
    cost every receiver a few ms.  Judged by content, never by stat: a write in
    the same clock tick as ours would look the same."""
    head, written, _ = repo.checked_out
    if not written or head != repo.head_if_any():
        return paths
    return {p for p in paths if not as_written(repo, written.get(os.fsencode(p)))}


def as_written(repo: Repo, c: Optional["Change"]) -> bool:
    if c is None:
        return False
    full = os.path.join(repo.path, os.fsdecode(c.path))
    try:
        return c.kind != "D" and holds_blob(full, os.lstat(full), c.new_mode, c.new_oid)
    except FileNotFoundError:
        return c.kind == "D"
    except OSError:
        return False


def worktree_changes(repo: Repo, paths: Optional[set] = None,
                     look_only: bool = False) -> List[bytes]:
    """Paths that differ from HEAD (modified, deleted, new and not ignored, staged),
    among paths if given.  look_only: write nothing (git status refreshes the index
    by the way, which fails on a full disk), for gtfc status."""
    if paths is not None and not paths:
        return []
    env = {"GIT_LITERAL_PATHSPECS": "1"} if paths else {}
    if look_only:
        env["GIT_OPTIONAL_LOCKS"] = "0"
    proc = repo.git("status", "--porcelain=v1", "-z", "--untracked-files=all",
                    "--no-renames", "--", *(sorted(paths) if paths else [":/"]),
                    env=env, check=False)
    if proc.returncode != 0:
        if paths:                       # e.g. a path inside a nested repo: look everywhere
            return worktree_changes(repo, None)
        raise GtfcError(f"`git status` failed in {repo.path}: {last_line(proc.stderr)}"
                        f"{disk_full_hint(proc.stderr)}")
    return [entry[3:] for entry in proc.stdout.split(b"\0") if entry]


def stage(repo: Repo, listed: Optional[List[bytes]], held: List[bytes]):
    """git add: exactly the listed paths, or (None) everything but the held ones.
    None when there is nothing to add (git add without paths would add all)."""
    if listed == []:
        return None
    if listed is not None:
        return repo.git("add", "-A", "--ignore-errors", "--pathspec-from-file=-",
                        "--pathspec-file-nul", input=b"\0".join(listed),
                        env={"GIT_LITERAL_PATHSPECS": "1"}, check=False)
    excluded = [":(exclude,literal,top)" + os.fsdecode(p) for p in held]
    return repo.git("add", "-A", "--ignore-errors", "--", ":/", *excluded, check=False)


DEFAULT_MAX_FILE_SIZE = 50 * 1024 * 1024


def max_file_size(repo: Repo) -> int:
    """gtfc.maxFileSize in bytes (git's k, m, g suffixes); 0 means no limit."""
    text = repo.setting("maxFileSize").strip()
    if not text:
        return DEFAULT_MAX_FILE_SIZE
    match = re.fullmatch(r"(\d+)\s*([kmg]?)(i?b)?", text.lower())
    if not match:
        raise GtfcError(f"gtfc.maxFileSize = {text!r} in {repo.git_dir}/config is not a "
                        "size — e.g. git config gtfc.maxFileSize 200m (0: no limit)")
    return int(match.group(1)) * 1024 ** " kmg".index(match.group(2) or " ")


def size_text(n: float) -> str:
    """52428800 -> '50 MiB', 102400 -> '100 KiB', 1536 -> '1.5 KiB'."""
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024:
            break
        n /= 1024
    else:
        unit = "GiB"
    return f"{n:.3g} {unit}" if unit != "bytes" and n < 1000 else f"{n:.0f} {unit}"


def oversized(repo: Repo, changed: List[bytes], limit: int) -> List[Tuple[bytes, int]]:
    """(path, size) of the changed regular files over limit (0: no limit)."""
    found = []
    for path in changed if limit else []:
        with contextlib.suppress(OSError):
            st = os.lstat(os.path.join(repo.path, os.fsdecode(path)))
            if stat.S_ISREG(st.st_mode) and st.st_size > limit:
                found.append((path, st.st_size))
    return found


def hold_back(repo: Repo, changed: List[bytes], limit: int,
              everywhere: bool = True) -> List[bytes]:
    """The changed files over limit (gtfc.maxFileSize): they stay uncommitted, so
    peers keep what they had (nothing half-synced).  Said once per file (the ones
    said are in .git/gtfc/held-back), listed by status."""
    held = [path for path, _ in oversized(repo, changed, limit)]
    record = os.path.join(repo.state_dir, "held-back")
    try:
        with open(record, "rb") as f:
            known = set(f.read().split(b"\0")) - {b""}
    except FileNotFoundError:
        known = set()
    for path in sorted(set(held) - known):
        warn(f"{repo.path}/{os.fsdecode(path)} is over gtfc.maxFileSize "
             f"({size_text(limit)}): kept here, not synced — raise the limit "
             "(git config gtfc.maxFileSize 200m) or list it in .gitignore")
    # Looking at some paths only, the others keep their entries.
    now = set(held) | (set() if everywhere else known - set(changed))
    if now != known:
        write_file_atomic(record, "".join(os.fsdecode(p) + "\0" for p in sorted(now)))
    return held


NESTED_REPO_RE = re.compile(rb"error: '(.+)/' does not have a commit checked out|"
                            rb"adding embedded git repository: (.+)")


def exclude_nested_repos(repo: Repo, stderr: bytes) -> bool:
    """A git repo inside the synced folder cannot be synced (git would store only a
    pointer to its commit): list it in .git/info/exclude, say so once, go on."""
    nested = [os.fsdecode(a or b).strip() for a, b in NESTED_REPO_RE.findall(stderr)]
    if not nested:
        return False
    exclude = os.path.join(repo.git_dir, "info", "exclude")
    os.makedirs(os.path.dirname(exclude), exist_ok=True)
    with open(exclude, "a", encoding="utf-8", errors="surrogateescape") as f:
        for path in nested:
            f.write(f"/{path}/\n")
            repo.git("rm", "-q", "--cached", "--ignore-unmatch", "--", path,
                     env={"GIT_LITERAL_PATHSPECS": "1"})
            warn(f"{repo.path}/{path} is a git repo of its own; gtfc cannot sync a repo "
                 "inside a repo, so it is now excluded (.git/info/exclude)")
    return True


def vanished(changes: List["Change"]) -> int:
    """How many files were deleted without their content turning up at a new path:
    a folder renamed or moved is no loss."""
    added: Dict[str, int] = {}
    for c in changes:
        if c.kind == "A":
            added[c.new_oid] = added.get(c.new_oid, 0) + 1
    lost = 0
    for c in changes:
        if c.kind == "D":
            if added.get(c.old_oid):
                added[c.old_oid] -= 1           # each new copy accounts for one delete
            else:
                lost += 1
    return lost


def check_mass_delete(repo: Repo, deleted: int) -> None:
    """Refuse to commit the loss of most files at once (an unmounted disk, a wrong
    rm -rf): committed, the deletion would spread to every node."""
    if deleted < MASS_DELETE_MIN or repo.allow_mass_delete:
        return
    total = repo.git("ls-tree", "-r", "-z", "--name-only", "HEAD").stdout.count(b"\0")
    if deleted * 2 <= total:
        return
    repo.git("reset", "-q")           # unstage; the files on disk stay as they are
    write_file_atomic(os.path.join(repo.state_dir, "mass-delete"), f"{deleted} {total}\n")
    raise GtfcError(f"{deleted} of {total} files vanished from {repo.path} at once — "
                    "not syncing that (is a disk unmounted?); if you meant it: "
                    f"gtfc-push --allow-mass-delete {shlex.quote(repo.path)}")


# Pipeline 3, send: fan-out and push sessions #################################
# Entry: push_to_peer(repo, peer), for each peer from send_head (gtfc-push, a
# background merge) or a watcher's PeerLink; fetch_from_peer is its pull twin.
# In: our HEAD and what we know each peer has (refs/gtfc/in and has).  Out: HEAD
# in the peer's inbox ref for us, on a push session or by git push.

def known_heads(repo: Repo, peer: Optional[str] = None) -> set:
    """Commits we know a peer (or any peer) has: what it pushed us, what we sent it
    or fetched from it."""
    return {oid for prefix in (INBOX, HAS) for name, oid in repo.refs(prefix).items()
            if peer is None or name == peer}


def read_only_note(name: str) -> str:
    """What the user is told once, when a peer turns out to be read-only for us."""
    return f"{name} is read-only for us (gtfc-shell.denywrite): it fetches changes by itself"


def push_to_peer(repo: Repo, peer: Node, on_sent=None,
                 session: Optional["PushSession"] = None) -> Optional[str]:
    """Send our head into the peer's inbox for us; None on success, else a one-line
    reason.  One sender per peer at a time (the watcher and a background integration
    may both want to), and the head is read under that lock: whoever sends last
    sends the newest.  The push is forced, since our head may move sideways (to the
    canonical merge, see merge_incoming).  Through the watcher's push session when
    it has one and the change is small, else with git push."""
    if os.path.exists(damaged_path(repo)):
        return None                     # never spread damage; status says why
    with repo.lock(timeout=TRANSFER_TIMEOUT, name=f"send-{peer.name}.lock"):
        oid = repo.head()
        known = known_heads(repo, peer.name)
        if oid in known:
            return None
        failure = open_connection(repo, peer)
        if not failure:
            if session and session.send(repo, peer, oid, known):
                pushed(repo, peer, oid)
            else:
                failure = push_head(repo, peer, oid)
    if not failure and on_sent and peer.name not in repo.read_only_peers:
        on_sent(oid)
    return failure


def pushed(repo: Repo, peer: Node, oid: str) -> None:
    repo.set_ref(f"{HAS}{peer.name}", oid)
    note_contact(repo, peer.name, "pushed")


def peer_git(repo: Repo, peer: Node, *args: str) -> subprocess.CompletedProcess:
    """git talking to peer.  A shared connection made before the peer pinned this
    repo for our key (we joined a second repo with it) is refused by the peer's
    gtfc-shell: that connection is closed and the call made once more anew."""
    proc = repo.git(*args, env=peer_env(repo, peer), check=False, timeout=TRANSFER_TIMEOUT)
    if proc.returncode != 0 and b"is not the repo this key may sync" in proc.stderr \
            and close_connection(repo, peer) and not open_connection(repo, peer):
        proc = repo.git(*args, env=peer_env(repo, peer), check=False,
                        timeout=TRANSFER_TIMEOUT)
    return proc


# The peer's pull from us and our push to it both write its inbox ref for us; the
# one that comes second finds the ref moved and fails.  Nothing is wrong: the push
# is tried again at once, and the pull leaves the ref to the push.
REF_RACE = re.compile(rb"failed to update ref|cannot lock ref '[^']*': is at")


def push_head(repo: Repo, peer: Node, oid: str) -> Optional[str]:
    for _attempt in range(2):
        proc = peer_git(repo, peer, "push", "--porcelain", "--no-verify", peer_url(peer),
                        f"+{oid}:{INBOX}{repo.node}")
        if not (proc.returncode and REF_RACE.search(proc.stdout + proc.stderr)):
            break
    text = proc.stderr.decode(errors="replace")
    if proc.returncode == 0:
        pushed(repo, peer, oid)
    elif "gtfc-shell.denywrite" in text:
        repo.read_only_peers.add(peer.name)     # see read_only_note
    elif DAMAGE_SIGNS.search(proc.stderr):
        suspect_damage(repo)
        return (f"not sent to {peer.name}: this repo is damaged ({last_line(proc.stderr)}); "
                "the next round repairs it from its peers")
    else:
        return explain_ssh_failure(peer.name, proc.stderr, proc.stdout)
    return None


# A push session: a running gtfc-watch keeps one open to each peer it sends to
# (`gtfc-receive 'REPO'` through the forced command), so that a change costs no
# new ssh channel, gtfc-shell start and ref advertisement at every hop and on
# every peer.  After a greeting line, each push is a line `push NAME OID SIZE`
# and SIZE bytes of a thin pack (at most MAX_STREAM_OBJECTS objects: more go
# by git push); the answer is `ok` or `error: WHY`, and an error ends the
# session (the sender then pushes with git, which says why in git's words).
# What receive-pack and gtfc's hook enforce, this enforces: only the peer's own
# inbox moves, objects are checked (fsck) and the commit must be complete.
STREAM_HELLO = b"gtfc-receive 1\n"
MAX_STREAM_OBJECTS = 100        # receive.unpackLimit's default: more make a pack file
# The sender closes a session after a pull interval idle; this end gives up on one
# whose sender vanished (TCP keepalive would take two hours), or on a push that is
# still not checked by then.
SESSION_IDLE_MAX = 900
SESSION_RETRY = 60.0            # after a peer refused a push session
SESSION_TIMEOUT = 30.0          # for an answer on a session (a 1 MiB pack included)
MAX_STREAM_BYTES = 1 << 20      # a bigger change goes by git push


class PushSession:
    """The sending end of a push session to one peer (see serve_stream), kept open
    by the watcher's link to it.  Any trouble closes it, and the push goes by git
    (which then says what is wrong); a peer whose gtfc has no sessions yet is
    asked again after SESSION_RETRY.  Every wait has a deadline: a peer that
    stops answering costs SESSION_TIMEOUT, then git push's own timeouts."""

    def __init__(self):
        self.proc: Optional[subprocess.Popen] = None
        self.used = 0.0
        self.retry_at = 0.0
        self.sent_last = False          # did the last push go this way

    def send(self, repo: Repo, peer: Node, oid: str, known: set) -> bool:
        """True when the peer took oid into our inbox; False: use git push."""
        self.sent_last = False
        if not known or time.monotonic() < self.retry_at:
            return False                # a first push: git finds what the peer has
        sent = repo.refs(HAS).get(peer.name)
        pack = thin_pack(repo, oid, {sent} if sent else known)
        if pack is None:
            return False                # too big for a session
        if self.proc is None and not self.open(repo, peer):
            self.retry_at = time.monotonic() + SESSION_RETRY
            return False
        header = f"push {repo.node} {oid} {len(pack)}\n".encode()
        if self.exchange(header + pack) != b"ok\n":
            self.close()
            return False
        self.used = time.monotonic()
        self.sent_last = True
        return True

    def open(self, repo: Repo, peer: Node) -> bool:
        argv = ["ssh", *peer_ssh_options(repo, peer), *shared_connection(repo, peer),
                *ssh_login(peer), f"{STREAM_COMMAND} '{peer.path}'"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        os.set_blocking(self.proc.stdin.fileno(), False)
        if self.exchange(b"") != STREAM_HELLO:     # an older gtfc, or refused
            self.close()
            return False
        return True

    def exchange(self, data: bytes) -> bytes:
        """Write data, then read one line back, within SESSION_TIMEOUT; b"" on
        any failure."""
        deadline = time.monotonic() + SESSION_TIMEOUT
        out, inp = self.proc.stdin.fileno(), self.proc.stdout.fileno()

        def ready(fd, event) -> bool:
            poller = select.poll()      # not select(): kqueue can hold fds above 1023
            poller.register(fd, event)
            return bool(poller.poll(max(0.0, deadline - time.monotonic()) * 1000))

        answer = b""
        try:
            while data:
                if not ready(out, select.POLLOUT):
                    return b""
                data = data[os.write(out, data):]
            while not answer.endswith(b"\n") and len(answer) < MAX_COMMAND:
                if not ready(inp, select.POLLIN):
                    return b""
                chunk = os.read(inp, 4096)
                if not chunk:
                    return b""
                answer += chunk
        except OSError:
            return b""
        return answer

    def idle(self) -> float:
        return time.monotonic() - self.used if self.proc else 0.0

    def close(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()          # the peer's gtfc-shell sees the end, and exits
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()




def thin_pack(repo: Repo, oid: str, bases: set) -> Optional[bytes]:
    """The objects of oid that a peer holding bases lacks, deltas against those;
    None when they are over MAX_STREAM_OBJECTS or MAX_STREAM_BYTES (read no
    further).  Made once for every peer with the same bases (usually what we sent
    them all last): eight peers, one pack-objects."""
    key = (oid, frozenset(bases))
    with PACK_LOCK:
        if key in repo.last_pack:
            return repo.last_pack[key]
        proc = subprocess.Popen(
            ["git", "-C", repo.path, "pack-objects", "--stdout", "--revs", "--thin",
             "--delta-base-offset", "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        proc.stdin.write("".join([f"{oid}\n"] + [f"^{b}\n" for b in sorted(bases)]).encode())
        proc.stdin.close()
        pack = proc.stdout.read(12)
        small = len(pack) == 12 and struct.unpack(">I", pack[8:12])[0] <= MAX_STREAM_OBJECTS
        if small:
            pack += proc.stdout.read(MAX_STREAM_BYTES)
            small = not proc.stdout.read(1)
        if not small:
            proc.kill()
        proc.stdout.close()
        if proc.wait() != 0 or not small:
            return None
        repo.last_pack.clear()
        repo.last_pack[key] = pack
        return pack


# Not state but a lock: the watcher's PeerLink threads share one repo's last_pack.
PACK_LOCK = threading.Lock()


def fetch_from_peer(repo: Repo, peer: Node, whole: bool = False) -> Optional[str]:
    """Fetch the peer's head into its inbox ref (its own head as last seen, which
    the history horizon asks for when the peer cannot push to us); whole: every
    object of its history, whatever we seem to have (see heal)."""
    if whole and git_version()[0] < (2, 36):
        return f"{peer.name}: git 2.36 or later is needed to fetch a whole history again"
    failure = open_connection(repo, peer)
    if failure:
        return failure
    # --no-auto-maintenance: a gc that fetch detached would race the merge for the
    # refs' locks; housekeep runs it when nothing else does.  --no-recurse-submodules:
    # there are none (nested repos are excluded), and looking for them reads the
    # index, which a power cut may have torn: the repair's own fetch then failed.
    with objects_lock(repo):
        proc = peer_git(repo, peer, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                        "--no-auto-maintenance", "--no-recurse-submodules",
                        *(["--refetch"] if whole else []),
                        peer_url(peer), f"+HEAD:{INBOX}{peer.name}")
    if proc.returncode and not REF_RACE.search(proc.stderr):
        return explain_ssh_failure(peer.name, proc.stderr)
    note_contact(repo, peer.name, "pulled")
    return None


def peer_record(repo: Repo, peer: str, what: str) -> str:
    """.git/gtfc/peers/PEER.WHAT: when we last pushed to or pulled from a peer (the
    file's time), and why the watcher is retrying it (.failing), for status."""
    return os.path.join(repo.state_dir, "peers", f"{peer}.{what}")


def note_contact(repo: Repo, peer: str, what: str) -> None:
    path = peer_record(repo, peer, what)
    repo.make_state_dir()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w"):
        pass
    os.utime(path)


def for_each_peer(action, repo: Repo, targets: List[Node]) -> Dict[str, str]:
    """Run action(repo, peer) for all targets in parallel: {peer: failure}."""
    from concurrent.futures import ThreadPoolExecutor   # see "Imported where used"
    if not targets:
        return {}

    def attempt(peer):
        try:
            return peer.name, action(repo, peer)
        except GtfcError as e:          # e.g. a timeout: that peer failed, not all
            return peer.name, f"{peer.name}: {e}"

    with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
        return {name: why for name, why in pool.map(attempt, targets) if why}


def send_head(repo: Repo, only: Optional[List[str]] = None,
              sent_to: Optional[List[str]] = None) -> Dict[str, str]:
    """Push HEAD to every peer (or those named) not known to have it, adding the
    names of those it went to to sent_to.  No network round trip at all when every
    peer already has it."""
    read_only = set(repo.read_only_peers)
    targets = [p for p in peers(repo)
               if p.name not in read_only and (only is None or p.name in only)]
    went = [] if sent_to is None else sent_to

    def send(repo: Repo, peer: Node) -> Optional[str]:
        return push_to_peer(repo, peer, on_sent=lambda oid: went.append(peer.name))
    failures = for_each_peer(send, repo, targets)
    for name in sorted(repo.read_only_peers - read_only):
        info(read_only_note(name))
    return failures


def is_novel(repo: Repo, head: str) -> bool:
    """True if no peer is known to have head: we made it, so we must spread it."""
    return head not in known_heads(repo)


def report(failures: Dict[str, str]) -> None:
    for why in failures.values():
        warn(why)


def push_repo(repo: Repo, sent_to: Optional[List[str]] = None) -> Dict[str, str]:
    try:
        integrate(repo)
    finally:        # our commits go out even when peers' changes cannot be applied here
        sent = send_head(repo, sent_to=sent_to)
    return sent


def pull_repo(repo: Repo, sent_to: Optional[List[str]] = None) -> Dict[str, str]:
    """Fetch from every peer, merge, and send on what they lack.  Also the moment to
    re-derive authorized_keys2 (after an upgrade, a failed or a manual edit) and to
    forget which peers were read-only."""
    repo.read_only_peers.clear()
    suspect_damage(repo)        # an admin's pull also checks every object (see check_whole)
    members = heal_peers(repo)  # a damaged HEAD: the members of a commit that can be read
    failures = for_each_peer(fetch_from_peer, repo, members)
    integrate(repo)
    refresh_access(all_local_repos())
    sent = send_head(repo, only=[p.name for p in members if p.name not in failures],
                     sent_to=sent_to)
    housekeep(repo)
    return {**failures, **sent}


def housekeep(repo: Repo) -> None:
    """git's own upkeep (packing loose objects) and the history horizon
    (keep_history), which gtfc keeps off the path of a change: the watcher runs it
    when idle, in a thread of its own; pull and gtfc-shell's merges after their work."""
    repo.git("maintenance", "run", "--auto", "--quiet", check=False)
    try:
        keep_history(repo)
    except GtfcError as e:
        warn(f"{repo.path}: history upkeep: {e}")




def serve_stream(repo: Repo, peer_names: List[str], denywrite: bool) -> int:
    data, answer = sys.stdin.buffer, sys.stdout.buffer
    answer.write(STREAM_HELLO)
    answer.flush()
    member_at = ""                      # the .gtfc folder (or HEAD) membership was checked in
    while True:
        # SIGALRM ends the process; what a push left in quarantine, git gc clears.
        signal.alarm(SESSION_IDLE_MAX)
        line = data.readline(MAX_COMMAND)
        if not line:
            return 0
        try:
            name, oid, size = parse_push_line(line, peer_names)
            head = repo.head_if_any()       # membership and the switch may change
            members = head and (repo.top_entry(head, GTFC_FOLDER) or head)  # while open
            if members != member_at:
                check_member(repo, peer_names, head or "HEAD")
                member_at = members
            if head and len(oid) != len(head):  # git would take it for an abbreviation
                raise GtfcError("refused: not an object id of this repo's hash")
            check_writable(denywrite, peer_names)
            with objects_lock(repo), quarantine(repo) as env:
                receive_objects(repo, data, size, env)
                receive_ref(repo, name, oid, env)
        except GtfcError as e:
            answer.write(f"error: {e}\n".encode())
            answer.flush()
            return 1
        answer.write(b"ok\n")
        answer.flush()
        if not ring_doorbell(repo, name):
            start_background_integrate(repo)


def parse_push_line(line: bytes, peer_names: List[str]) -> Tuple[str, str, int]:
    words = line.decode("ascii", errors="replace").split()
    if len(words) != 4 or words[0] != "push" or not OID_RE.fullmatch(words[2]) \
            or not words[3].isdigit() or len(words[3]) > 12 or not line.endswith(b"\n"):
        raise GtfcError("refused: malformed push line")
    if int(words[3]) > MAX_STREAM_BYTES:
        raise GtfcError("refused: a push session takes at most 1 MiB")
    if words[1] not in peer_names:
        raise GtfcError(f"refused: {words[1][:64]!r} is not this key's inbox")
    if set(words[2]) == {"0"}:
        raise GtfcError("refused: peers may not delete a ref")
    return words[1], words[2], int(words[3])


def receive_objects(repo: Repo, data, size: int, env: Dict[str, str]) -> None:
    """Read size bytes of pack into the quarantine env names, every object checked
    (--strict)."""
    header = data.read(min(size, 12))
    if len(header) < 12 or header[:4] != b"PACK" or \
            struct.unpack(">I", header[8:12])[0] > MAX_STREAM_OBJECTS:
        raise GtfcError("refused: not a small pack")
    unpack = subprocess.Popen(["git", "-C", repo.path, "unpack-objects", "-q", "--strict"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=dict(os.environ, **env))
    left = size - 12
    try:
        unpack.stdin.write(header)
        while left > 0:
            chunk = data.read(min(left, 1 << 16))
            if not chunk:
                break
            unpack.stdin.write(chunk)
            left -= len(chunk)
        unpack.stdin.close()
    except BrokenPipeError:
        pass
    err = unpack.stderr.read()
    if unpack.wait() != 0 or left > 0:
        raise GtfcError(f"refused: bad pack ({last_line(err) or 'cut short'})")


def receive_ref(repo: Repo, name: str, oid: str, env: Dict[str, str]) -> None:
    """Check that oid is a commit whose history is complete with what the
    quarantine env names holds; then move NAME's inbox to it."""
    found = repo.loose_object(oid, env["GIT_OBJECT_DIRECTORY"])    # it came in the pack
    kind = found[0] if found else \
        repo.git("cat-file", "-t", oid, env=env, check=False).stdout.strip()
    if kind != b"commit":
        raise GtfcError(f"refused: {short(oid)} is not a commit")
    if proven_complete(repo, oid, env["GIT_OBJECT_DIRECTORY"]):
        proc = None
    else:                               # what receive-pack asks: git walks all it must
        proc = repo.git("rev-list", "--objects", "--quiet", oid, "--not", "--all", env=env,
                        check=False)
    if proc and proc.returncode != 0:
        raise GtfcError(f"refused: {short(oid)}'s history is incomplete "
                        f"({last_line(proc.stderr)})")
    accept_quarantined(repo, env["GIT_OBJECT_DIRECTORY"])
    repo.set_ref(INBOX + name, oid, f"gtfc: pushed by {name}")


def proven_complete(repo: Repo, commit: str, new: str) -> bool:
    """Is a pushed commit's history complete?  Proven here, in the common case,
    without the walk of the whole tree that rev-list makes (a tenth of a second in
    a 100,000-file repo).  unpack-objects --strict has checked that each object
    the pack's objects name exists, of the right type; it remains to show that
    the old ones among them are complete.  They are when every parent is the tip
    of a ref (git keeps all that a ref reaches) and every old folder the new ones
    name is the folder at that same path in the first parent.  new: the
    quarantine holding the pack's objects.  False: not proven, ask git."""
    fields = repo.commit_fields(commit, new)
    tips = repo.ref_files("refs/")
    if not fields or not fields[1] or tips is None or \
            not set(fields[1]) <= set(tips.values()):
        return False
    parent = repo.commit_fields(fields[1][0])
    return bool(parent) and folder_complete(repo, fields[0], parent[0], new, set())


def folder_complete(repo: Repo, tree: str, before: Optional[str], new: str,
                    proven: set) -> bool:
    """tree is complete: the same as before (a complete tree), or new with every
    folder in it complete.  Files need no more than unpack-objects' check, and
    submodules' commits are not ours to have.  proven: trees found complete so
    far; each is looked at once, however often the pack names it.  (tree_entries
    leaves a tree with a mode git would not write to git.)"""
    if tree == before or tree in proven:
        return True
    entries = repo.tree_entries(tree, new)
    old = {} if before is None else repo.tree_entries(before)
    if entries is None or old is None:
        return False
    for name, (mode, oid) in entries.items():
        if mode == FOLDER_MODE:
            prior_mode, prior = old.get(name, (b"", None))
            if not folder_complete(repo, oid, prior if prior_mode == mode else None, new,
                                   proven):
                return False
    proven.add(tree)
    return True


@contextlib.contextmanager
def quarantine(repo: Repo):
    """Where a session's objects wait until the push is accepted (as receive-pack
    keeps them): a refused push, even one whose objects git already wrote before
    its last check failed, leaves nothing in the repo.  Yields git's environment."""
    import shutil, tempfile             # see "Imported where used"
    objects = os.path.join(repo.git_dir, "objects")
    # Named as git names its own, so that git gc clears one a killed gtfc left.
    folder = tempfile.mkdtemp(prefix="tmp_objdir-incoming-", dir=objects)
    try:
        yield {"GIT_OBJECT_DIRECTORY": folder, "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects,
               "GIT_QUARANTINE_PATH": folder}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def objects_lock(repo: Repo, exclusive: bool = False):
    """Held (shared) by whatever writes objects that a ref will then name: git
    skips writing an object the repo already has, so from that moment the ref
    relies on the copy there.  A purge deletes its loose objects holding it
    exclusively (see prune_history)."""
    repo.make_state_dir()
    try:
        f = open(os.path.join(repo.state_dir, "objects.lock"), "a")
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            raise
        yield                   # nothing is written here now: git says why, once
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def accept_quarantined(repo: Repo, folder: str) -> None:
    """Move checked objects into the repo; one already there stays (same bytes)."""
    objects = os.path.join(repo.git_dir, "objects")
    for sub in os.listdir(folder):
        for name in os.listdir(os.path.join(folder, sub)):
            os.makedirs(os.path.join(objects, sub), exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.link(os.path.join(folder, sub, name), os.path.join(objects, sub, name))


# Pipeline 4, receive: gtfc-shell #############################################
# Entry: cmd_shell, the forced command a peer's key runs.  In: a git fetch or push
# of the pinned repo, or a push session (serve_stream).  Out: the peer's commit in
# its inbox ref, checked; then the watcher's doorbell rung, or a merge forked off
# (start_background_integrate).

def cmd_shell(pinned: List[str], peer_names: List[str], denywrite: bool) -> int:
    """Serve one git fetch or push of a pinned repo to a peer.  A push may only
    move the peer's own inbox refs/gtfc/in/<peer>: every other ref is hidden from
    it, and git refuses updates to hidden refs; a hook refuses deletes."""
    verb, path = parse_git_command(os.environ.get("SSH_ORIGINAL_COMMAND"))
    for name in [name for name in os.environ if name.startswith("GIT_")]:
        del os.environ[name]            # if sshd lets any in (AcceptEnv), git must not see them
    repo = Repo(pinned_repo(path, pinned))
    git_dir = repo.git_dir
    if not os.path.isdir(git_dir):
        raise GtfcError(f"{repo.path} is missing on {os.uname().nodename} (unmounted or "
                        "moved?) — it syncs again once it is back")
    check_member(repo, peer_names)
    if verb == "upload-pack":
        os.execvp("git", ["git", "upload-pack", "--strict", git_dir])
    check_writable(denywrite, peer_names)
    if verb == "stream":
        return serve_stream(repo, peer_names, denywrite)
    # receive.autogc=false: the pusher would wait for the gc; see housekeep().
    confine = ["-c", f"core.hooksPath={receive_hooks_dir(repo)}",
               "-c", "receive.autogc=false",
               "-c", "receive.hideRefs=refs/", "-c", "receive.hideRefs=HEAD"]
    for name in peer_names:
        confine += ["-c", f"receive.hideRefs=!{INBOX}{name}"]
        # A push killed mid-way (or a power cut) may have left the inbox locked:
        # receive-pack, unlike gtfc's own git calls, would refuse every push after.
        repo.remove_lock_if_stale(os.path.join(git_dir, INBOX + name + ".lock"))
    with objects_lock(repo):
        status = subprocess.call(["git", *confine, "receive-pack", git_dir])
    if status == 0 and not ring_doorbell(repo, peer_names[0]):
        start_background_integrate(repo)
    return status


STREAM_COMMAND = "gtfc-receive"      # a push session: see serve_stream
GIT_VERBS = {"git-upload-pack": "upload-pack", "git-receive-pack": "receive-pack",
             STREAM_COMMAND: "stream",
             "git upload-pack": "upload-pack", "git receive-pack": "receive-pack"}
MAX_COMMAND = 4096


def sq_dequote(text: str) -> str:
    """Undo git's shell quoting of a path: 'a b' with ' as '\\'' and ! as '\\!'.
    Anything else (double quotes, bare words, trailing text) is refused."""
    if not text.startswith("'"):
        raise ValueError("path is not single-quoted")
    out, i = [], 1
    while True:
        end = text.find("'", i)
        if end < 0:
            raise ValueError("unterminated quote")
        out.append(text[i:end])
        i = end + 1
        if i == len(text):
            return "".join(out)
        if text[i:i + 1] == "\\" and text[i + 1:i + 2] in ("'", "!") \
                and text[i + 2:i + 3] == "'":
            out.append(text[i + 1])
            i += 3
            continue
        raise ValueError("text after the quoted path")


def parse_git_command(command: Optional[str]) -> Tuple[str, str]:
    """SSH_ORIGINAL_COMMAND → ("upload-pack" | "receive-pack" | "stream", path), or
    GtfcError (its message goes back to the peer)."""
    if not command:
        raise GtfcError("this key may only sync a gtfc repo: no shell, no commands — "
                        "use gtfc-push / gtfc-pull")
    if len(command) > MAX_COMMAND or any(c in command for c in "\0\n\r"):
        raise GtfcError("refused: malformed command — this key may only run "
                        "git-upload-pack or git-receive-pack")
    for prefix, verb in GIT_VERBS.items():
        if command.startswith(prefix + " "):
            try:
                return verb, sq_dequote(command[len(prefix) + 1:])
            except ValueError as e:
                raise GtfcError(f"refused: {e} — this key may only sync a gtfc repo") from None
    raise GtfcError(f"refused {command.split(' ')[0][:40]!r}: this key may only run "
                    "git-upload-pack or git-receive-pack on its gtfc repo")


def pinned_repo(path: str, pinned: List[str]) -> str:
    """The pinned repo that path names exactly (no `..`, no symlink, no prefix)."""
    wanted = path.rstrip("/")
    if wanted.endswith("/.git"):
        wanted = wanted[:-len("/.git")]
    for repo in pinned:
        if wanted == repo.rstrip("/"):
            return repo
    raise GtfcError(f"refused: {path[:200]!r} is not the repo this key may sync")


# receive.denyDeletes only guards branches, so a hook refuses every delete (and a tag
# or tree, which merges could not use).
PRE_RECEIVE_HOOK = """#!/bin/sh
# Written by gtfc: peers may update their inbox ref, never delete a ref.
while read old new ref; do
  case "$new" in *[!0]*) ;; *) echo "gtfc: refused: peers may not delete $ref" >&2; exit 1;; esac
  [ "$(git cat-file -t "$new")" = commit ] ||
    { echo "gtfc: refused: $ref must be a commit" >&2; exit 1; }
done
"""


def receive_hooks_dir(repo: Repo) -> str:
    """gtfc's own hooks for receive-pack, in .git/gtfc, where no push can write."""
    folder = os.path.join(repo.state_dir, "hooks")
    hook = os.path.join(folder, "pre-receive")
    try:
        with open(hook, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = None
    if current != PRE_RECEIVE_HOOK or not os.access(hook, os.X_OK):
        write_file_atomic(hook, PRE_RECEIVE_HOOK, mode=0o755)
    return folder


def check_writable(denywrite: bool, peer_names: List[str]) -> None:
    if denywrite or denied_now(peer_names):
        raise GtfcError(f"{os.uname().nodename} is read-only for its peers "
                        "(gtfc-shell.denywrite) — it fetches changes by itself")


def integration_lines(result: "Integration", started: float,
                      senders: Optional[set] = None) -> List[str]:
    """What an integration did, for the log: what it committed, where it moved to."""
    took = f"{(time.monotonic() - started) * 1000:.0f} ms"
    lines = [f"committed {short(result.old)} ({took})"] if result.committed else []
    if result.new != result.old:                                # old: before merging
        origin = f"from {', '.join(sorted(senders))}" if senders else "peers' changes"
        lines.append(f"applied {origin}: now at {short(result.new)}"
                     f"{' (a merge)' if result.merged else ''} ({took})")
    return lines


def integrate_after_receive(repo: Repo) -> None:
    """Run in the background after a peer pushed: merge, and pass our head on when
    it holds something no peer has (our merge or local edits) or when membership
    changed (so a node that joined through us is let in everywhere)."""
    request_integration(repo)
    started = time.monotonic()
    result = integrate(repo, wait=False)
    for line in integration_lines(result, started) if result else ():
        LOG(f"{os.path.basename(repo.path)}: {line}")
    if result and (is_novel(repo, result.new) or result.members_changed):
        report(send_head(repo))
    housekeep(repo)


# A running gtfc-watch integrates what peers push itself — warm, and in its log:
# gtfc-shell rings its doorbell, a FIFO the watcher keeps open, with the sender's
# name.  With no watcher reading, the open fails and gtfc-shell integrates.

def doorbell_path(repo: Repo) -> str:
    return os.path.join(repo.state_dir, "doorbell")


def ring_doorbell(repo: Repo, sender: str) -> bool:
    try:
        fd = os.open(doorbell_path(repo), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:                     # no doorbell, or nobody listening (ENXIO)
        return False
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        os.write(fd, sender.encode() + b"\n")
        return True
    except BlockingIOError:             # a full pipe: the watcher has work queued
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class Doorbell:
    """The watcher's end of the doorbell."""

    def __init__(self, repo: Repo):
        self.path = doorbell_path(repo)
        self.fd: Optional[int] = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        try:
            repo.make_state_dir()
            os.mkfifo(self.path, 0o600)
            # Read-write: the FIFO never reports end-of-file between two writers.
            self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        except OSError as e:    # a file system without FIFOs: gtfc-shell merges instead
            warn(f"{repo.path}: no doorbell ({e.strerror}): pushes are merged by "
                 "gtfc-shell, a little slower")

    def fileno(self) -> Optional[int]:
        return self.fd

    def senders(self) -> set:
        if self.fd is None:
            return set()
        data = b""
        with contextlib.suppress(BlockingIOError):
            while True:
                chunk = os.read(self.fd, 65536)
                data += chunk
                if len(chunk) < 65536:
                    break
        return set(data.decode(errors="replace").split()) if data else set()

    def close(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self.fd)
        self.fd = None


def check_member(repo: Repo, peer_names: List[str], commit: str = "HEAD") -> None:
    """The peer must still be a member.  Removing a node drops its key from
    authorized_keys2, but a connection it opened before (shared connections stay
    up for minutes) was let in by the old file: membership has the last word."""
    if not peer_names:
        raise GtfcError("this key's authorized_keys2 line names no peer (--peer) — "
                        "run gtfc-pull here to rewrite the gtfc block")
    for name in peer_names:
        if repo.git("cat-file", "-e", f"{commit}:{NODES_DIR}/{name}",
                    check=False).returncode == 0:
            return
    if repo.git("ls-tree", commit, check=False).returncode != 0:
        raise GtfcError(f"refused: {repo.path} is damaged on this host; it repairs itself "
                        "from its peers at its next round (see gtfc status there)")
    raise GtfcError(f"refused: {', '.join(peer_names)} is no longer a member of "
                    f"{repo.path}")


def denied_now(peer_names: List[str]) -> bool:
    """Has the admin switched this peer's line to gtfc-shell.denywrite since its
    connection was let in?  sshd chose the forced command then; the file decides now."""
    try:
        with open(os.path.join(home(), ".ssh", "authorized_keys2"), encoding="utf-8",
                  errors="surrogateescape") as f:
            _, block, _ = split_managed_block(f.read())
    except FileNotFoundError:
        return False
    for line in block:
        if line.startswith('command="') and "gtfc-shell.denywrite" in line:
            words = line.split('"')[1].split()
            if any(("--peer", name) in zip(words, words[1:]) for name in peer_names):
                return True
    return False


def start_background_integrate(repo: Repo) -> None:
    """Merge what was just pushed, after the pusher has gone: its push returns as
    soon as the objects are safe here.  A fork, not a new gtfc: this process has
    already paid Python's start-up, a large part of a change's trip."""
    import traceback                    # see "Imported where used"
    repo.make_state_dir()
    log = os.open(repo.log_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    child = os.fork()
    if child:
        os.close(log)
        os.waitpid(child, 0)    # it exits at once: a push session leaves no zombies
        return
    if os.fork():               # the merge runs in a grandchild, adopted by init
        os._exit(0)
    LOG.configure(stamp=True)           # the child writes .git/gtfc/log, where times help
    try:                                # the child: detached, its output to the log
        os.setsid()
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        integrate_after_receive(repo)
    except GtfcError as e:
        warn(str(e))
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


# Pipeline 5, integrate: merge and check out ##################################
# Entry: integrate(repo).  In: local edits, inbox and fetched heads.  Out, under
# the repo lock: HEAD on the canonical merge of everything known (merge_incoming),
# the files moved to it (update_worktree) with their modes and owners, and the
# onChange hook run.  Damage met on the way is repaired first (Self-heal, below).

class Integration(NamedTuple):
    old: str
    new: str
    committed: bool          # local changes were committed
    merged: bool             # a merge commit was made
    members_changed: bool


def integrate(repo: Repo, wait: bool = True, paths: Optional[set] = None,
              on_commit: Optional[Callable[[str], None]] = None) -> Optional[Integration]:
    """Commit local changes, merge everything peers sent or we fetched, and move the
    working tree along — under the repo lock.  on_commit(commit) is called with a
    commit of local changes before a merge of it starts (the watcher sends it then;
    with nothing to merge it is sent when the round ends, a moment later).

    wait=False: a process that finds the lock busy goes (its caller has left a rerun
    flag first: request_integration); whoever holds the lock runs once more when it
    sees the flag, so a burst of pushes costs one integration, not one waiting
    process each."""
    flag = os.path.join(repo.state_dir, "rerun")
    result: Optional[Integration] = None
    while True:
        try:
            with repo.lock(timeout=LOCK_TIMEOUT if wait else 0):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(flag)
                step = integrate_whole(repo, paths, on_commit)
        except RepoBusy:
            return result
        if step.new != step.old:
            run_on_change(repo, step.old, step.new)
        if step.members_changed:
            forget_former_members(repo)
            refresh_access(all_local_repos())
        result = step if result is None else Integration(
            result.old, step.new, result.committed or step.committed,
            result.merged or step.merged, result.members_changed or step.members_changed)
        if not os.path.exists(flag):
            return result
        wait = False
        paths = None if paths is None else set()    # the rerun is for what came in


ON_CHANGE_TIMEOUT = 120


def run_on_change(repo: Repo, old: str, new: str) -> None:
    """Run gtfc.onChange (this node's git config, never synced) after peers' changes
    reached the files: the paths that changed on stdin, one per line, in the repo
    folder.  E.g. reload a service whose config came in.  Its failure is logged,
    never fatal to sync."""
    if not repo.setting("onChange"):
        return
    listed = repo.git("diff", "--name-only", "--no-renames", "-z", old, new).stdout
    # A mode or owner change names the path it is about, not gtfc's record of it.
    paths = dict.fromkeys((meta_target(p) or (p,))[0] for p in listed.split(b"\0") if p)
    run_hook(repo, "onChange", paths, GTFC_OLD=old, GTFC_NEW=new)


def run_hook(repo: Repo, name: str, lines: Iterable[bytes], **env: str) -> None:
    """Run gtfc.NAME, a command in this node's git config (never synced), in the
    repo folder with lines on stdin.  Its failure is logged, never fatal to sync."""
    command = repo.setting(name)
    if not command:
        return
    try:
        proc = run(["/bin/sh", "-c", command], cwd=repo.path, check=False,
                   env=dict(os.environ, GTFC_REPO=repo.path, **env),
                   input=b"".join(line + b"\n" for line in lines), timeout=ON_CHANGE_TIMEOUT)
    except GtfcError as e:
        warn(f"{repo.path}: gtfc.{name}: {e}")
        return
    if proc.returncode != 0:
        warn(f"{repo.path}: gtfc.{name} exited with {proc.returncode}: "
             f"{last_line(proc.stderr)} (sync goes on)")


def forget_former_members(repo: Repo) -> None:
    """Drop the refs of nodes that left, so nothing they left behind is merged."""
    members = set(read_nodes(repo))
    for prefix in (INBOX, HAS):
        for name in set(repo.refs(prefix)) - members:
            repo.git("update-ref", "-d", prefix + name, check=False)


def request_integration(repo: Repo) -> None:
    """Ask for one more integration round, by whoever holds the lock or by us."""
    repo.make_state_dir()
    open(os.path.join(repo.state_dir, "rerun"), "w").close()


def integrate_locked(repo: Repo, paths: Optional[set] = None,
                     on_commit: Optional[Callable[[str], None]] = None) -> Integration:
    committed = merged = False
    refusal = ""
    finish_interrupted_checkout(repo)
    rescued = follow_replaced(repo)     # a program closed a file a checkout replaced
    if paths is not None:
        paths = paths | set(map(os.fsdecode, rescued))
    for _attempt in range(5):
        committed_now = commit_local(repo, paths)
        committed |= committed_now
        paths = None                    # a refused checkout: a file changed, look again
        old = repo.head()
        if committed_now and on_commit and unmerged_heads(repo, old):
            on_commit(old)              # it leaves while we merge: peers start sooner
        new, merged_now = merge_incoming(repo, old)
        merged |= merged_now
        if new == old:
            break
        refusal = update_worktree(repo, old, new)
        if not refusal:
            break
    else:
        why = (f"could not update the files in {repo.path} ({refusal}); nothing is lost — "
               "gtfc retries on the next round")
        write_file_atomic(stuck_path(repo), why + "\n")
        raise GtfcError(why)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(stuck_path(repo))
    changed = new != old and repo.checked_out[2]
    if new != old and not changed:
        same_members(repo, old, new)
    return Integration(old, new, committed, merged, changed)


def stuck_path(repo: Repo) -> str:
    """.git/gtfc/stuck: why peers' changes could not be applied here, for status."""
    return os.path.join(repo.state_dir, "stuck")


def merge_incoming(repo: Repo, head: str) -> Tuple[str, bool]:
    """Fold head and every incoming commit it lacks into one commit: (result, merged).

    When one commit contains all the others, that is the result (a fast-forward).
    Otherwise what is merged is not the heads themselves but the content commits
    behind them (see content_tips), in sorted order.  So nodes that know the same edits reach
    the same commit, however the edits reached them and whichever merges they made
    on the way — a node whose merge differs from the canonical one simply moves to
    the canonical one.  A head with no history in common with ours (a peer that
    bootstrapped anew) is skipped with a warning instead of blocking all merges."""
    pending = unmerged_heads(repo, head)
    if not pending:
        return head, False
    if len(pending) == 1:           # the common case: one peer's edit on top of ours
        tip = next(iter(pending))
        if head in (repo.parents(tip) or ()) or repo.git(
                "merge-base", "--is-ancestor", head, tip, check=False).returncode == 0:
            return tip, False
    related = [head]
    for oid in sorted(pending):
        if shares_history(repo, head, oid):
            related.append(oid)
        else:
            warn(f"{repo.path}: ignoring {short(oid)}: it shares no history with this "
                 "repo (a peer bootstrapped anew?) — have that node re-join")
    if len(related) == 1:           # nothing came in
        return head, False
    independent = repo.out("merge-base", "--independent", *related).split()
    if len(independent) == 1:       # one of them contains all the others
        return independent[0], False
    with open_objects(repo):
        return fold(repo, head, related, independent)


def fold(repo: Repo, head: str, related: List[str], independent: List[str]
         ) -> Tuple[str, bool]:
    """merge_incoming's merges: the content tips of independent, in sorted order."""
    tips = content_tips(repo, independent)
    if hold_back_merges(repo, head, tips):
        return head, False
    result, looked = tips[0], known_heads(repo)
    for n, other in enumerate(tips[1:]):
        overtaken = sent_meanwhile(repo, related, looked) if n else None
        if overtaken:
            return overtaken, False
        result = merge_commits(repo, result, other)
    return result, len(tips) > 1 and result != head


def sent_meanwhile(repo: Repo, inputs: List[str], looked: set) -> Optional[str]:
    """A commit a peer sent while this fold ran that holds all of its inputs: then
    take it, as if it had come before the round.  After a partition heals every
    node folds the same commits at once, on shared CPUs; the first to finish
    sends its fold, and the others stop theirs between two merges.  (looked: the
    heads already looked at, updated.)"""
    for oid in sorted(known_heads(repo) - looked):
        looked.add(oid)
        if repo.out("merge-base", "--independent", oid, *inputs).split() == [oid]:
            return oid
    return None


def shares_history(repo: Repo, head: str, oid: str) -> bool:
    """Does commit oid share history with head?  Asked of git only when neither
    oid nor a parent of it is known to: a peer's new head is mostly a commit on top
    of one looked at before.  Once shared, always (a repo's history only grows)."""
    remember(repo, ("shares", head), True)
    if any(repo.merge_memo.get(("shares", c)) for c in [oid, *(repo.parents(oid) or ())]):
        found = True
    else:
        found = repo.git("merge-base", head, oid, check=False).returncode == 0
    if found:
        remember(repo, ("shares", oid), True)
    return found


def hold_back_merges(repo: Repo, head: str, tips: List[str]) -> bool:
    """True (and said once, and noted for gtfc status) while a member announces
    another merge rule — in head and in every commit to merge, since an upgraded
    node's announcement arrives in the commits it sends.  Merging then would make
    commits that node merges differently, and the two would never agree.
    Fast-forwards still happen, so the cluster moves on through the other nodes'
    merges until all are upgraded."""
    note = os.path.join(repo.state_dir, "merges-held")
    others = other_merge_rules(repo, head)
    for tip in tips if others else ():
        others = {name: rule for name, rule in other_merge_rules(repo, tip).items()
                  if name in others}
    if not others:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(note)
        return False
    why = (", ".join(f"{name} runs merge rule {rule}" for name, rule in sorted(others.items()))
           + f", this node {MERGE_RULE}: this node merges nothing until every host runs "
           "the same gtfc (upgrade them and restart their watchers)")
    if not os.path.exists(note):
        warn(f"{repo.path}: {why}")
        write_file_atomic(note, why + "\n")
    return True


def unmerged_heads(repo: Repo, head: str) -> set:
    """The commits peers sent us or have that head does not contain.  Which ones
    it does is remembered (Repo.contained) and carried to a child of head, so
    that the common rounds — our own commit, one peer's commit on top of ours,
    our checkout's echo — ask git nothing."""
    incoming = known_heads(repo)
    known = contained_in(repo, head)
    new = incoming - known
    one_on_top = len(new) == 1 and head in (repo.parents(next(iter(new))) or ())
    if new and not one_on_top:
        known |= set(repo.out("for-each-ref", "--format=%(objectname)", f"--merged={head}",
                              INBOX, HAS).split())
        incoming = known_heads(repo)
        new = incoming - known
    repo.contained = (head, (known & incoming) | {head})    # only what may come again
    return new


def contained_in(repo: Repo, head: str) -> set:
    """Commits known to be in head's history: head, and what was found in it or,
    when the last head looked at is head's parent, in that."""
    last, known = repo.contained
    if last == head:
        return set(known)
    return known | {last, head} if last in (repo.parents(head) or ()) else {head}


def content_tips(repo: Repo, heads: List[str]) -> List[str]:
    """The newest commits behind heads that are not gtfc's own merges, sorted.

    gtfc merges hold nothing of their own (they are a pure function of their
    parents), so looking through them is what makes the result independent of the
    path the edits took.  The walk descends only through gtfc merges and stops at
    the first other commit on each path: a few steps, however long the history."""
    seen: set = set()
    frontier, tips = set(heads), set()
    while frontier:
        seen |= frontier
        looked = {oid: repo.author_and_parents(oid) for oid in frontier}
        asked = sorted(oid for oid, found in looked.items() if not found)
        listing = repo.out("rev-list", "--no-walk=unsorted", "--no-commit-header",
                           "--format=%H %ae %P", *asked, env=MERGE_ENV) if asked else ""
        for line in listing.splitlines():
            oid, email, *parents = line.split()
            looked[oid] = email, parents
        frontier = set()
        for oid, (email, parents) in looked.items():
            if email == MERGE_IDENTITY[1] and len(parents) >= 2:
                frontier |= set(parents) - seen
                if parents == sorted(parents):      # see peers_merge
                    remember(repo, ("merged", *parents), oid)
            else:
                tips.add(oid)
    return sorted(repo.out("merge-base", "--independent", *tips).split())


def merge_commits(repo: Repo, a: str, b: str) -> str:
    """The merge of commits a and b: a pure function of the pair, so every node that
    merges the same two commits makes the same commit id and no node ping-pongs."""
    first, second = sorted([a, b])
    known = repo.merge_memo.get((first, second)) or peers_merge(repo, first, second)
    if known and repo.has_object(known):    # not pruned since, as a replaced merge may be
        return known
    bases = merge_bases(repo, first, second)
    times = dict(zip((first, second), commit_times(repo, [first, second])))
    tree = causal_merge_tree(repo, bases, (first, second))
    date = f"@{max(times.values())} +0000"
    name, email = MERGE_IDENTITY
    env = dict(MERGE_ENV, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email,
               GIT_AUTHOR_DATE=date, GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email,
               GIT_COMMITTER_DATE=date)
    merged = repo.out(*MERGE_CONFIG, "commit-tree", "--no-gpg-sign", tree, "-p", first,
                      "-p", second, "-m", "gtfc: merge", env=env)
    remember(repo, (first, second), merged)
    repo.graph.add(merged, (first, second), max(times.values()), name)
    return merged


def commit_times(repo: Repo, commits: List[str]) -> List[int]:
    """Each commit's committer time: read here where git need not be asked."""
    headers = [repo.cheap_object(c) for c in commits]
    found = [re.search(rb"^committer .*> (\d+) [-+]\d{4}$", h[1].split(b"\n\n", 1)[0], re.M)
             if h and h[0] == b"commit" else None for h in headers]
    if all(found):
        return [int(match.group(1)) for match in found]
    return list(map(int, repo.out("show", "-s", "--format=%ct", *commits).split())) \
        if commits else []


def peers_merge(repo: Repo, first: str, second: str) -> Optional[str]:
    """A merge of first and second that a peer made and sent (content_tips saw it):
    the very commit this node would make, since a merge is a pure function of the
    pair — if every member announces our merge rule in it.  After a partition heals,
    every node folds the same commits: each merge is then worked out once, by
    whichever node gets there first, not by all of them."""
    merged = repo.merge_memo.get(("merged", first, second))
    if merged and not other_merge_rules(repo, merged):
        remember(repo, (first, second), merged)
        return merged
    return None


def merge_bases(repo: Repo, *commits: str) -> List[str]:
    """The best common ancestors of the first commit and (the merge of) the others,
    as `git merge-base --all` finds them."""
    key = ("merge-base",) + commits
    if key not in repo.merge_memo:
        remember(repo, key, commit_graph(repo, commits).bases(commits[:1], commits[1:]))
    return repo.merge_memo[key]


class CommitGraph:
    """Each commit's parents, time, author and generation number (1 + its parents'
    largest), kept for the process: commits never change.  A fold asked git for
    some 70 walks (merge bases, what each side did); they are walked here, over
    what one rev-list loaded (only commits not seen before).  Walked in order of
    generation, highest first, a walk meets every child before its parent, so it
    stops exactly where both sides' paint meets — as git's walks do with a
    commit-graph file, and never deeper than the commits between the heads and
    their common ancestors.  Parents are as git sees them at the history horizon
    (.git/shallow): none for the commits named there."""

    MAX = 500_000               # commits kept; past that, loaded afresh

    def __init__(self) -> None:
        self.info: Dict[str, Tuple[Tuple[str, ...], int, str]] = {}   # parents, time, author
        self.generation: Dict[str, int] = {}
        self.loaded: List[str] = []         # commits loaded with all their history
        self.shallow: frozenset = frozenset()

    def parents(self, commit: str) -> Tuple[str, ...]:
        return () if commit in self.shallow else self.info[commit][0]

    def load(self, repo: Repo, commits: Iterable[str]) -> None:
        """Know commits and all their history (what loaded commits hold is known)."""
        new = sorted({c for c in commits if c not in self.generation})
        if not new:
            return
        listing = repo.out("rev-list", "--no-commit-header", "--format=%H %P|%ct|%an", *new,
                           "--not", *self.loaded[-64:], env=MERGE_ENV)
        for line in listing.splitlines():
            ids, when, who = line.split("|", 2)
            commit, *parents = ids.split()
            self.info.setdefault(commit, (tuple(parents), int(when), who))
        for start in new:                   # parents first, without recursion
            stack = [start]
            while stack:
                commit = stack[-1]
                if commit in self.generation:
                    stack.pop()
                    continue
                if commit not in self.info:
                    raise GtfcError(f"{repo.path}: git listed no commit {short(commit)}")
                waiting = [p for p in self.info[commit][0] if p not in self.generation]
                if waiting:
                    stack += waiting
                    continue
                self.generation[commit] = 1 + max(
                    (self.generation[p] for p in self.info[commit][0]), default=0)
                stack.pop()
        self.loaded += new

    def add(self, commit: str, parents: Tuple[str, ...], when: int, who: str) -> None:
        """A commit just made here, whose parents are known (else the next load
        lists it)."""
        if all(p in self.generation for p in parents):
            self.info[commit] = parents, when, who
            self.generation[commit] = 1 + max(self.generation[p] for p in parents)
            self.loaded.append(commit)

    def paint(self, groups: Iterable[Iterable[str]], done: Callable[[int], bool],
              seen: Callable[[str, int], int]) -> None:
        """Walk down from each group of commits (the first flag 1, the next 2, 4 and
        so on), highest generation first, while a commit not yet done is waiting;
        seen(commit, flags) is called as each is reached for the last time and says
        what its parents get."""
        flags: Dict[str, int] = collections.Counter()
        for i, group in enumerate(groups):
            for commit in group:
                flags[commit] |= 1 << i
        queue = [(-self.generation[c], c) for c in flags]
        heapq.heapify(queue)
        waiting = sum(not done(f) for f in flags.values())
        while waiting:
            _, commit = heapq.heappop(queue)
            here = flags[commit]
            waiting -= not done(here)
            passed = seen(commit, here)
            for parent in self.parents(commit):
                before = flags.get(parent)
                now = (before or 0) | passed
                if now == before:
                    continue
                flags[parent] = now
                if before is None:
                    heapq.heappush(queue, (-self.generation[parent], parent))
                    waiting += not done(now)
                elif not done(before) and done(now):
                    waiting -= 1

    def bases(self, ours: Iterable[str], theirs: Iterable[str]) -> List[str]:
        """The best common ancestors (none below another), sorted."""
        return self.common((ours, theirs))

    def common(self, groups: List[Iterable[str]]) -> List[str]:
        """The best common ancestors of one commit of each group, in one walk,
        sorted."""
        found: List[str] = []
        everyone, stale = (1 << len(groups)) - 1, 1 << len(groups)

        def seen(commit: str, flags: int) -> int:
            if flags == everyone:
                found.append(commit)
                return flags | stale
            return flags
        self.paint(groups, lambda flags: flags & stale, seen)
        return sorted(found)

    def among_history(self, commit: str, wanted: set) -> frozenset:
        """The commits of wanted that are commit or in its history ("": none), in one
        walk that stops below the oldest of them (by generation)."""
        if not commit or not wanted:
            return frozenset()
        floor = min(self.generation[c] for c in wanted)
        found, visited, stack = set(), set(), [commit]
        while stack:
            now = stack.pop()
            if now in visited or self.generation[now] < floor:
                continue
            visited.add(now)
            if now in wanted:
                found.add(now)
            stack.extend(self.parents(now))
        return frozenset(found)

    def apart(self, ours: Iterable[str], theirs: Iterable[str]) -> List[Tuple[int, str]]:
        """(0 or 1, commit) for each commit only ours (0) or only theirs (1) reach,
        as `git rev-list --left-right ours...theirs` lists them."""
        found: List[Tuple[int, str]] = []

        def seen(commit: str, flags: int) -> int:
            if flags != 3:
                found.append((flags - 1, commit))
            return flags
        self.paint((ours, theirs), lambda flags: flags == 3, seen)
        return found


def commit_graph(repo: Repo, commits: Iterable[str]) -> CommitGraph:
    """repo's CommitGraph, knowing commits.  Started afresh where the history
    horizon moved back (a commit no longer named in .git/shallow: git sees its
    parents again) or it grew too big."""
    try:
        with open(os.path.join(repo.git_dir, "shallow")) as f:
            shallow = frozenset(f.read().split())
    except FileNotFoundError:
        shallow = frozenset()
    graph = repo.graph
    if not graph.shallow <= shallow or len(graph.info) > CommitGraph.MAX:
        graph = repo.graph = CommitGraph()
    graph.shallow = shallow
    graph.load(repo, commits)
    return graph


def remember(repo: Repo, key: tuple, value) -> None:
    if len(repo.merge_memo) > 20_000:
        repo.merge_memo.clear()
    repo.merge_memo[key] = value


# A version of a path: (mode, blob id) as a tree lists them, or None: no file there.
Version = Optional[Tuple[str, str]]


class Maker(NamedTuple):
    """The newest commit that made a version (it differs there from every parent):
    its time and author (a node's name, or gtfc's for a merge)."""
    when: int
    who: str


NOBODY = Maker(0, "")


def as_version(mode: str, oid: str) -> Version:
    return None if mode == NO_FILE else (mode, oid)


NO_BASE = ("", "")          # not a version: the sides had no common one


# ---------------------------------------------------------------------------
# Merges, the causal rule (rule 33).  A path's state is three registers: HERE
# (is there a file), BODY (its kind and content: (kind, blob)) and BIT (the
# executable bit).  A node's commit *writes* the registers its change touches: a
# delete writes HERE; an edit writes HERE and what it changed; a file made where
# there was none writes all three.  A merge writes nothing.  Each register
# carries the writes that nothing else in history follows (its writers), so a
# merge asks, register by register: did one side see every write the other has?
# That side's value holds.  If not, the writes are concurrent: an edit beats a
# delete; two contents merge their lines against the content both had, or
# collide; two bits collide.  What collides is kept: the version written later
# keeps the name, the other goes to a conflict copy, whose writers are its
# version's, so a user's delete of the copy follows them and wins everywhere.
# Nothing here compares a version with an older one to guess who changed it.

HERE, BODY, BIT = range(3)


class Reg(NamedTuple):
    value: object
    writers: frozenset  # the writes of it that no other write in history follows


def registers(version: Version) -> Tuple[bool, Optional[Tuple[str, str]], bool]:
    if version is None:
        return False, None, False
    mode, oid = version
    return True, ("file" if mode in FILE_MODES else mode, oid), mode == EXEC_MODE


def changed_register(change: Tuple[Version, Version], r: int) -> bool:
    """Does a change (old version to new) differ in register r: a file made or
    deleted, all three."""
    return None in change or registers(change[0])[r] != registers(change[1])[r]


def as_file(body: Tuple[str, str], bit: bool) -> Version:
    kind, oid = body
    return ((EXEC_MODE if bit else FILE_MODE) if kind == "file" else kind), oid


class History(NamedTuple):
    """The commits a merge reads (from its sides down to where their histories
    meet: the merge bases, merged again until one is left), each commit's
    ancestors among them (a bit mask by index), and each path's state in each."""
    index: Dict[str, int]
    ancestors: Dict[str, int]
    changes: Dict[bytes, Dict[str, Tuple[Version, Version]]]   # path: commit: (old, new)
    states: Dict[str, Dict[bytes, tuple]]
    wrote: Dict[Tuple[bytes, int, str], object]     # (path, register, writer): its value
    settled: Dict[Tuple[bytes, str], frozenset]     # (path, a copy's delete): what it held
    dropped: Dict[Tuple[bytes, str], set]           # (path, a copy's delete): its content
    leaves: set                                     # the window's first commits
    masks: Dict[Tuple[bytes, str], int]             # below's, kept
    order: List[str]                                # the commits read, parents first
    members: Dict[bytes, set]                       # original: it and its copies read
    upto: Dict[bytes, int]                          # original: the commits read for them
    graph: "CommitGraph"                            # whose commits these are
    twins: Dict[bytes, Dict[tuple, list]]           # path: change: commits that made it
    tops: Dict[bytes, Dict[frozenset, frozenset]]   # path: writes: latest of them
    later: Dict[Tuple[bytes, int, str], Tuple[int, int]]    # followers': (read, mask)
    touched: Dict[bytes, Tuple[int, int, int]]      # path: (read, its writes, deletes)

    def making(self, path: bytes, change: Tuple[Version, Version]) -> list:
        """The commits that made this change (old version to new) of path."""
        return self.twins.get(path, {}).get(change, [])

    def made(self, path: bytes, commit: str, change: Tuple[Version, Version]) -> None:
        """A node's commit changed path so (old version to new)."""
        changes = self.changes.setdefault(path, {})
        if commit not in changes:
            changes[commit] = change
            self.twins.setdefault(path, {}).setdefault(change, []).append(commit)

    def over(self, path: bytes, later: str, earlier: str) -> bool:
        """Does the write later follow the write earlier?  A copy's delete follows
        only what the copy held (and what that followed), not all it saw."""
        held = self.settled.get((path, later))
        if held is None:
            return self.follows(later, earlier)
        # Writes from before the window are its first commits' (leaves): a copy's
        # delete follows one whose content it deleted.
        return any(h == earlier or self.follows(h, earlier) for h in held) or \
            earlier in self.leaves and self.follows(later, earlier) and \
            self.wrote.get((path, BODY, earlier)) in self.dropped[path, later]

    def note(self, path: bytes, state: tuple) -> tuple:
        for r, reg in enumerate(state):
            for w in reg.writers:
                self.wrote.setdefault((path, r, w), reg.value)
        return state

    def below(self, path: bytes, later: str) -> int:
        """The writes later follows, as a mask (see over)."""
        key = (path, later)
        if key not in self.masks:
            held = self.settled.get(key)
            if held is None:
                mask = self.ancestors[later] & ~(1 << self.index[later])
            else:
                mask = 0
                for h in held:
                    mask |= self.ancestors[h]
                for leaf in self.leaves:
                    if self.over(path, later, leaf):
                        mask |= 1 << self.index[leaf]
            self.masks[key] = mask
        return self.masks[key]

    def follows(self, later: str, earlier: str) -> bool:
        return later != earlier and bool(self.ancestors[later] >> self.index[earlier] & 1)

    def by_bases(self, write: str, bases: Iterable[str]) -> bool:
        """Is write one of bases, or in the history of one (no write since them)?"""
        return any(write == b or self.follows(b, write) for b in bases)

    def reach(self, commits: Iterable[str]) -> int:
        """commits and their history, as a mask."""
        mask = 0
        for c in commits:
            mask |= self.ancestors[c]
        return mask

    def followers(self, path: bytes, r: int, earlier: str) -> int:
        """The writes of path's register r that follow earlier, as a mask (nodes'
        commits; not a copy's delete, which writes none).  Kept: a merge asks for
        the same ones again and again, and walking a busy file's every write each
        time was most of a cold merge's work (a chaos history: 80%).  A commit read
        later is never in the history of one read before, so what was found stands
        and only the writes read since are looked at."""
        writes = self.changes.get(path, {})
        read, mask = self.later.get((path, r, earlier), (0, 0))
        if read < len(writes):
            bit = self.index[earlier]
            for x in itertools.islice(writes, read, None):
                if x != earlier and self.wrote.get((path, r, x)) is not None \
                        and self.ancestors[x] >> bit & 1:
                    mask |= 1 << self.index[x]
            self.later[path, r, earlier] = (len(writes), mask)
        return mask

    def writes(self, path: bytes) -> Tuple[int, int]:
        """(the nodes' commits that changed path, those that deleted it), as masks:
        kept, as followers are (a merge asks again and again, and walking a busy
        file's writes each time was a twentieth of the merging after a chaos run
        healed)."""
        writes = self.changes.get(path, {})
        read, changed, deleted = self.touched.get(path, (0, 0, 0))
        if read < len(writes):
            for commit in itertools.islice(writes, read, None):
                changed |= 1 << self.index[commit]
                if self.wrote.get((path, HERE, commit)) is False:
                    deleted |= 1 << self.index[commit]
            self.touched[path] = (len(writes), changed, deleted)
        return changed, deleted


MAX_WINDOW = 50_000          # commits a merge reads, at most, to find one first commit
MAX_KEPT = 2_000_000         # paths' states (commits x paths) a kept history holds, at most
MAX_BASE_DEPTH = 3           # merge bases' own concurrent versions merged, at most


def first_common(graph: CommitGraph, commits: List[str]) -> List[str]:
    """The best common ancestors of all of commits, merged again until one is left
    (or none is found)."""
    found = graph.common([[c] for c in commits])
    while len(found) > 1:
        deeper = graph.bases(found[:1], found[1:])
        if not deeper:
            break
        found = deeper
    return found


def read_history(repo: Repo, sides: Tuple[str, str], bases: List[str],
                 paths: List[bytes]) -> History:
    graph = commit_graph(repo, list(sides))
    floor = first_common(graph, list(bases))
    above = [c for _, c in graph.apart(list(sides), floor)]
    while True:
        window = set(above) | set(floor)
        # The history horizon's commits (no parents here) hold what was before it.
        leaves = set(floor) | {p for c in above for p in graph.parents(c) if p not in window} \
            | (set(above) & graph.shallow)
        if len(leaves) <= 1 or len(window) > MAX_WINDOW:
            break
        # Commits that do not come from the floor: go back to where everything
        # meets, so that what the first commit holds is older than every write.
        deeper = first_common(graph, sorted(leaves))
        if not deeper or set(deeper) == set(floor):
            break
        # (What the sides reach and the deeper floor does not: the floor's too.)
        above += [c for _, c in graph.apart(floor, deeper)]
        floor = deeper
    window |= leaves
    # With one first commit, a commit's state of a path depends on nothing else:
    # the merges of a fold read one history, extended as they go.
    key = ("causal", tuple(sorted(leaves)))
    history = repo.merge_memo.get(key) if leaves == set(floor) and len(floor) == 1 else None
    # Past MAX_KEPT it starts afresh, with this merge's paths only (the same states,
    # read again): it holds every path any merge of the fold asked for.
    if history is not None and sum(len(m) * history.upto[g] for g, m in
                                   history.members.items()) > MAX_KEPT:
        history = None
    # Not across a new CommitGraph (the horizon moved): it may not know them all.
    if history is None or history.leaves != leaves or history.graph is not graph:
        history = History({}, {}, {}, {}, {}, {}, {}, leaves, {}, [], {}, {}, graph, {}, {}, {}, {})
        if leaves == set(floor) and len(floor) == 1:
            # One kept at a time: MAX_KEPT bounds the process, not each history.
            for other in [k for k in repo.merge_memo if k[:1] == ("causal",)]:
                del repo.merge_memo[other]
            remember(repo, key, history)
    new = sorted((c for c in window if c not in history.index),
                 key=lambda c: (graph.generation[c], c))
    for c in new:
        history.index[c] = len(history.index)
        mask = 1 << history.index[c]
        if c not in leaves:
            for p in graph.parents(c):
                mask |= history.ancestors[p]
        history.ancestors[c] = mask
    if new and leaves != set(floor):
        for leaf in leaves - set(floor):    # below the floor: before the floor's commits
            for f in floor:
                if leaf in graph.among_history(f, {leaf}):
                    history.ancestors[f] |= history.ancestors[leaf]
        for c in new:                       # and before what follows those
            if c not in leaves:
                for p in graph.parents(c):
                    history.ancestors[c] |= history.ancestors[p]
    old = history.order[:]
    history.order.extend(new)
    read = [c for c in history.order if c not in leaves]
    diffs = commit_diffs(repo, read)
    hand = [c for c in read if len(graph.parents(c)) <= 1]
    # The copies of these paths that a node's commit touched (a user deleted one):
    # a collision may name them again.
    asked = set(paths)
    wanted = asked | {path for c in hand for path, _, _ in diffs[c]
                      if copy_original(path) in asked}
    # A copy's delete settles its original (settle_copies): where a new path is a
    # copy deleted in a commit already read, its original is read again, copies and
    # all.  Otherwise what was read stands, and only the new paths are read there.
    touched_before = {path for c in old if c in diffs and len(graph.parents(c)) <= 1
                      for path, _, _ in diffs[c]}
    # A path is read with its copies (they settle each other), up to the newest
    # commit when a merge asks for it: one that no merge asks for again costs no more.
    behind: Dict[int, set] = {}         # commits read: the paths to read on from there
    for group, mine in sorted(path_groups(wanted).items()):
        members = history.members.setdefault(group, set())
        fresh = mine - members
        upto = history.upto.get(group, 0)
        if any(copy_original(p) not in members or p in touched_before for p in fresh):
            upto = 0
            for p in members:
                history.tops.pop(p, None)
        elif fresh:
            annotate(repo, graph, history, history.order[:upto], sorted(fresh), diffs)
        members |= fresh
        history.upto[group] = len(history.order)
        behind.setdefault(upto, set()).update(members)
    for upto, group_paths in sorted(behind.items()):
        annotate(repo, graph, history, history.order[upto:], sorted(group_paths), diffs)
    return history


def path_groups(paths: Iterable[bytes]) -> Dict[bytes, set]:
    """paths by original: each with its conflict copies (and theirs)."""
    groups: Dict[bytes, set] = {}
    for path in paths:
        groups.setdefault(copy_chain(path)[-1], set()).add(path)
    return groups


def copy_chain(path: bytes) -> List[bytes]:
    """path, and the original it is a conflict copy of, and that one's, ..."""
    chain = [path]
    while copy_original(chain[-1]):
        chain.append(copy_original(chain[-1]))
    return chain


def annotate(repo: Repo, graph: CommitGraph, history: History, commits: List[str],
             paths: List[bytes], diffs: Dict[str, list]) -> None:
    """Each of commits' state of each of paths, parents first (their parents' states
    of those paths are known)."""
    if not commits or not paths:
        return
    leaves, wanted = history.leaves, set(paths)
    # Originals first: a merge's copy takes its writers from the original's state.
    paths = sorted(paths, key=lambda p: len(copy_chain(p)))
    for c in commits:
        parents = () if c in leaves else graph.parents(c)
        states = history.states.setdefault(c, {})
        if c in leaves:
            real = tree_versions(repo, c, paths)
            for p in paths:
                states[p] = history.note(p, tuple(
                    Reg(v, frozenset([c]) if real[p] else frozenset())
                    for v in registers(real[p])))
            continue
        # A commit's diffs are against each parent: a path none lists is as in all.
        after = versions_after(repo, c, diffs.get(c, ()))
        new = {p: after[p] for p in paths if p in after} if len(paths) < len(after) \
            else {p: v for p, v in after.items() if p in wanted}
        if len(parents) <= 1:
            before = history.states[parents[0]] if parents else None
            if before:      # (the parent holds every path asked, read first: or only those)
                states.update(before if len(before) == len(paths) else
                              ((p, before[p]) for p in paths))
            for p in (new if before else paths):
                if p in new:
                    history.made(p, c, (held_version(before[p]) if before else None, new[p]))
                states[p] = history.note(p, written(c, before[p] if before else None, new.get(p),
                                                    history.changes.get(p, {}).get(c)))
            if before and any(copy_original(p) for p in new):
                kept = {p: states[p] for p in paths}
                settle_copies(history, c, before, states)
                for p in paths:
                    if states[p] is not kept[p]:
                        history.note(p, states[p])
        else:
            first = history.states[parents[0]]
            second, *others = [history.states[q] for q in parents[1:]]
            copied = None
            for p in paths:
                # Most paths: every parent holds the same state, and so does the merge.
                same = first[p]
                if (p not in new or new[p] == held_version(same)) and \
                        (second[p] is same or second[p] == same) and \
                        all(o[p] == same for o in others):
                    states[p] = same
                    continue
                version = new[p] if p in new else held_version(same)
                if copied is None:
                    copied = copies_made(diffs.get(c, ()))
                states[p] = history.note(p, merged_state(
                    history, p, [history.states[q] for q in parents], version, c, parents,
                    copied.get(p, set()) if any(held_version(history.states[q][p]) != version
                                                for q in parents) else None))


def versions_after(repo: Repo, commit: str, diff: list) -> Dict[bytes, Version]:
    """{path: its version in commit} for the paths commit's diff lists.  Kept as
    commit_diffs keeps the diff: annotate asks it of each of the window's commits
    once per group of paths it reads, and remaking it from the diff every time was
    a tenth of a watcher's merging on a chaos run's history."""
    key = ("after", commit)
    if key in repo.merge_memo:
        return repo.merge_memo[key]
    after = {path: version for path, _, version in diff}
    if len(diff) <= 1000:
        remember(repo, key, after)
    return after


def held_version(state: tuple) -> Version:
    """The version a commit holds, from its state (whose values are that version's
    where it has a file)."""
    return as_file(state[BODY].value, state[BIT].value) if state[HERE].value else None


def copies_made(diff: list) -> Dict[bytes, set]:
    """The contents of the conflict copies a merge holds that a parent did not, by
    original."""
    copied: Dict[bytes, set] = {}
    for path, _, new in diff:
        if new and copy_original(path):
            copied.setdefault(copy_original(path), set()).add(registers(new)[BODY])
    return copied


def written(commit: str, before: Optional[tuple], version: Version,
            change: Optional[Tuple[Version, Version]]) -> tuple:
    """A node's commit's state of a path: the registers its change wrote are its own."""
    values = registers(version)
    if before is None:
        return tuple(Reg(v, frozenset([commit]) if change else frozenset()) for v in values)
    if not change:
        return before
    mine = frozenset([commit])
    old = registers(change[0])
    if version is None:
        return (Reg(False, mine), before[BODY], before[BIT])
    if change[0] is None:
        return tuple(Reg(v, mine) for v in values)
    return tuple(Reg(v, mine) if r == HERE or v != old[r] else before[r]
                 for r, v in enumerate(values))


def settle_copies(history: History, commit: str, before: Dict[bytes, tuple],
                  states: Dict[bytes, tuple]) -> None:
    """A node's commit that deleted a conflict copy settled the collision: the
    writes the copy held are followed, at the original path too, by this commit,
    which keeps what the name holds.  So a host that never saw the collision
    loses that version at the name as well."""
    for copy, changes in history.changes.items():
        original = copy_original(copy)
        if commit not in changes or changes[commit][1] is not None or original not in states \
                or commit in history.changes.get(original, {}):    # it wrote the name too
            continue
        name = states[original]
        # What the name still holds of a write the copy held stays that write's:
        # the user kept it (its bit, say), and where it stays, so does its file.
        # (The copy's version: its content's writes and its bit's, a chmod of it.)
        wrote = before[copy][BODY].writers | before[copy][BIT].writers
        held = wrote
        # (Not where the name holds no file: its content there is what it held
        # before, seed 3760270.)
        # A line merge at the name holds a part of each write it merged, though none
        # wrote it whole: they stay its writes (seed 4070192: delta's B, merged with
        # gamma's E at the name, was gone with eps's delete of a copy that held it
        # too, and gamma's delete, which never saw it, took the file).
        merged = line_merged(history, original, name[BODY]) if name[HERE].value else set()
        # Not where the name holds the very version (content and bit) of a write the
        # copy did not hold: the copy's version is gone whole, though its content is
        # the name's too (seed 4040008: delta's delete of its restored C,644 left
        # gamma's C,755, which gamma then deleted).
        other = name[HERE].value and any(
            held_version(history.states[o][original]) == held_version(name)
            for o in name[HERE].writers - held if original in history.states.get(o, {}))
        kept = set() if other else {
            w for w in held for r in (BODY, BIT)
            if name[HERE].value and w in name[r].writers
            and history.wrote.get((original, r, w)) == name[r].value
            and not any(history.wrote.get((original, r, o)) == name[r].value
                        for o in name[r].writers - held)} | held & merged
        history.dropped.setdefault((original, commit), set()).add(
            registers(changes[commit][0])[BODY])
        settled = []
        for r, reg in enumerate(name):
            held = wrote - kept if r == HERE else \
                {w for w in wrote if history.wrote.get((original, r, w), reg.value) != reg.value
                 and not (r == BODY and w in merged)}
            # Also where the name no longer lists them (a collision's loser): a
            # side that never saw the collision still holds them there.
            if held and commit not in reg.writers:
                history.wrote[original, r, commit] = None      # it follows, writes nothing
                history.settled[original, commit] = history.settled.get(
                    (original, commit), frozenset()) | held
                reg = Reg(reg.value, reg.writers - held | {commit})
            settled.append(reg)
        states[original] = tuple(settled)


def latest(history: History, path: bytes, writers: Iterable[str]) -> frozenset:
    """The writes that no other one follows, nor a twin of theirs: a write of the
    same change (from one version to another) that another host made first,
    which the follower saw (set, clear, set again is no twin of the first set),
    or the very version a delete among them deleted (made again, not restored)."""
    writers = frozenset(writers)
    if len(writers) <= 1:
        return writers
    known = history.tops.setdefault(path, {})
    if writers not in known:
        known[writers] = latest_of(history, path, writers)
    return known[writers]


def unfollowed(history: History, path: bytes, writers: Iterable[str]) -> set:
    """Of writers, those no other one follows."""
    writers, followed = set(writers), 0
    for o in writers:
        followed |= history.below(path, o)
    return {w for w in writers if not followed >> history.index[w] & 1}


def latest_of(history: History, path: bytes, writers: frozenset) -> frozenset:
    top = unfollowed(history, path, writers)
    if len(top) <= 1:
        return frozenset(top)
    changes = history.changes.get(path, {})
    twinned = set()
    for w in top:
        change = changes.get(w)
        if change is None:
            continue
        # A change w's own history made already is the twin of t, not w (set,
        # clear, set again on both hosts: the second set of one is new to the other).
        same = history.making(path, change)
        if any(history.follows(w, u) for u in same):
            continue
        def restored(w=w, change=change) -> bool:
            # Not a restore: w's own history held that version, and an undo is a
            # write like any other (seed 3620010: a copy's delete saw a twin of it).
            return change[1] is not None and any(
                path in states and held_version(states[path]) == change[1]
                and history.follows(w, u) for u, states in history.states.items())
        for o in top - {w}:
            # A delete of the very version w made (content and bit) saw it: it
            # deleted that version, whoever made it again unaware.
            if any(t != w and history.over(path, o, t) and not history.follows(w, t)
                   and not ((path, o) in history.settled and restored()) for t in same) or \
                    change[1] is not None and changes.get(o, (None, 0)) == (change[1], None) \
                    and not restored():
                twinned.add(w)
                break
    # Writes that hide each other hide none: what is left must not hang on the
    # order the states came in.
    return frozenset(top - twinned) if twinned != top else frozenset(top)


def join(history: History, path: bytes, states: List[tuple], commits: List[str]) -> List[tuple]:
    """Each register of several states (of commits) joined: (value, writers, None),
    or (None, writers, their values by writer) where writes that no state saw all
    of disagree.  A state whose writers are exactly the joined ones holds their
    value already (a merge of them).  A state whose every write (nodes' writes of
    this path) another commit has in its history adds nothing to that commit's:
    it is left out, so a write that commit's state no longer lists (a collision's
    loser, which went to its copy) does not come back from a side that never saw
    it settled.  (Only nodes' writes of this very path, a copy's delete settling
    it among them: a copy's state lists the writes of the version it holds, made
    at the original's name; the window's first commits stand for the writes
    before them.)"""
    # The window's first commits count where they held this path themselves.
    changes = history.changes.get(path, {})
    first = {leaf for leaf in history.leaves
             if leaf in history.states and path in history.states[leaf]
             and history.states[leaf][path][HERE].writers}
    kept = list(range(len(states)))
    for i in range(len(states)):
        mine = {w for reg in states[i] for w in reg.writers}
        if all(w in changes or w in first or (path, w) in history.settled for w in mine) and any(
                j != i and all(w == commits[j] or history.follows(commits[j], w) for w in mine)
                for j in kept):
            kept.remove(i)
    states = [states[i] for i in kept]
    out, twins = [], set()
    for r in (HERE, BODY, BIT):
        writers = {w for s in states for w in s[r].writers}
        top = latest(history, path, writers)
        if r == BODY:
            # A write whose content is a twin's that the other side saw is that
            # twin's, bit and all (seed 4100353: gamma's revive of init,644, alpha's
            # twin of which beta saw before its edit, took no bit from beta-9).
            twins = unfollowed(history, path, writers) - top
        elif r == BIT and top - twins:
            top -= twins
        if len(top) > 1:
            top -= superseded(history, path, r, top, commits, states)
        # (A side with no file holds no content or bit, whatever writes it lists:
        # seed 4110106, where every version had gone with a deleted copy; seed
        # 4280090, where that side listed the latest bit writes.)
        filed = [s for s in states if r == HERE or s[HERE].value or out[HERE][0] is False]
        holders = [s for s in filed if s[r].writers == top]
        if r == BIT:
            # A copy's delete writes no bit: a side listing one (it settled a bit
            # the other side's name no longer held: seed 3750408) holds the same
            # bit writes as the other side.
            wrote_bit = bit_writes(history, path, top)
            holders = [s for s in filed if wrote_bit
                       and bit_writes(history, path, s[r].writers) == wrote_bit] or holders
        if r == BIT and len({s[r].value for s in holders}) > 1:
            # The same bit writes, settled apart (they collided, and each side kept
            # another content at the name): the bit of the side whose content stands.
            holders = standing_sides(holders, out[BODY]) or holders
        if holders:
            out.append((holders[0][r].value, top, None))
            continue
        values = {w: history.wrote[path, r, w] for w in top
                  if history.wrote[path, r, w] is not None or r == BODY}
        if not values:                  # only settled copies: what the states hold
            # (the bit: the side's listing the latest bit writes, as a copy's delete
            # writes none: not a bit that a copy's delete on the other side had
            # settled, seed 3770828, nor the first side's where both hold the content,
            # 4030070; else the side's whose content stands)
            standing = states
            if r == BIT and len({s[BIT].value for s in states}) > 1:
                listed = {w for s in states for w in s[BIT].writers}
                real = bit_writes(history, path, listed)
                # (nor one a copy's delete listed on a side had settled: seed
                # 3750408 met another way, gamma's chmod of A, whose copy beta
                # deleted while gamma deleted the copy of A,644)
                settled_away = {w for d in listed - real
                                for w in history.settled.get((path, d), ())}
                # (nor one a delete in either side's history saw: gone, bit and
                # all, seed 4380142)
                reach = history.reach(commits)
                wrote = {w for w in latest(history, path, real) - settled_away
                         if not bit_deleted(history, path, w, states, reach)}
                standing = [s for s in states if wrote and
                            bit_writes(history, path, s[BIT].writers) >= wrote] \
                    or standing_sides(states, out[BODY]) or states
            # (No file where every version the sides held at the name went with a
            # copy a user deleted: each side deleted the other's, seed 4110106.
            # Unless each held the same content there: then each user kept that
            # content and settled only the other's bit, seed 4210594.)
            value = False if r == HERE and len(states) > 1 and not all(
                s[HERE].value and s[BODY].value == states[0][BODY].value for s in states) \
                else standing[0][r].value
            out.append((value, top, None))
        elif len(set(values.values())) == 1:
            out.append((next(iter(values.values())), top, None))
        else:
            out.append((None, top, values))
    return out


def moved_on(history: History, path: bytes, chmod: str, commits: Iterable[str]) -> bool:
    """Did a write of path's content in a commit's history follow chmod: its node
    moved on from the version the chmod made, though that write went to a copy
    (seed 4150194: alpha's chmod of init0, then its E, which collided with gamma's
    edit and went to a copy; the chmod's init0,755 was no version of its own)."""
    return bool(history.followers(path, BODY, chmod) & history.reach(commits))


def superseded(history: History, path: bytes, r: int, writers: frozenset,
               commits: List[str], states: List[tuple]) -> frozenset:
    """Of writers, those a write of register r in a commit's history followed,
    though no state lists that write: it lost a collision and went to its copy, and
    what it saw is still older (seed 4100258: gamma's restore of init saw its A,B,
    collided with eps's A and went to a copy; delta, which never saw the restore,
    still held A,B at the name).  A bit write a delete there saw is gone with its
    version too, though an edit beat that delete (bit_deleted)."""
    others = history.reach(commits)         # the writes there, less writers'
    for w in writers:
        others &= ~(1 << history.index[w])
    # Mostly every write there is in a writer's history, and none can follow one:
    # writers follow none of each other (a copy's delete follows only what it held).
    later = history.writes(path)[0] & others
    for w in writers:
        if (path, w) not in history.settled:
            later &= ~history.ancestors[w]
    out = frozenset(w for w in writers if later and history.followers(path, r, w) & others
                    or r == BIT and bit_deleted(history, path, w, states, others))
    return out if out != writers else frozenset()


def bit_deleted(history: History, path: bytes, write: str, states: List[tuple],
                reach: int) -> bool:
    """Did a delete in reach see this bit write, which no content written after it
    carries in a state here?  Its version is gone, bit and all, though an edit
    beat the delete (seed 4380142: gamma's chmod, then its delete, which delta's
    revive of the file beat; beta, having seen all, wrote D over the revive: D
    keeps the revive's 644).  Not a bit an edit that followed it carries: that
    edit's version, bit and all, beat the delete (seed 4390214: delta's pool-A
    over beta's beta-1,755, which beta then deleted: pool-A,755)."""
    deletes = history.writes(path)[1] & reach
    seen = bool(deletes and history.followers(path, HERE, write) & deletes)
    carried = seen and any(write in s[BIT].writers and any(
        history.wrote.get((path, BODY, b)) is not None and history.follows(b, write)
        for b in s[BODY].writers) for s in states)
    return seen and not carried


def bit_writes(history: History, path: bytes, writers: frozenset) -> frozenset:
    """Of writers, those that wrote path's bit (not a copy's delete)."""
    return frozenset(w for w in writers if history.wrote.get((path, BIT, w)) is not None)


def deletes_among(history: History, path: bytes, writers: Iterable[str]) -> List[str]:
    """Of writers, those that deleted path."""
    return [w for w in writers if history.wrote.get((path, HERE, w)) is False]


def standing_sides(states: List[tuple], body: tuple) -> List[tuple]:
    """Of states, those whose content stands in body (join's content register): the
    ones listing its every latest write, else the ones holding the only content
    those writes wrote."""
    value, top, values = body
    written = ({value} if values is None else set(values.values())) - {None}
    return [s for s in states if s[BODY].writers == top] or [
        s for s in states if len(written) == 1 and s[BODY].value in written]


def merged_state(history: History, path: bytes, parent_states: List[Dict[bytes, tuple]],
                 version: Version, commit: str, commits: List[str],
                 copied: Optional[set]) -> tuple:
    """A merge commit's state of a path: its parents' joined, with the values the
    merge holds where their writes were concurrent (it settled them).  copied: the
    contents of the conflict copies of path it holds that a parent did not (None
    where every parent held the merge's version: it settled nothing there)."""
    values = registers(version)
    parents = [states[path] for states in parent_states]
    original = copy_original(path)
    if version and original and not any(s[HERE].value for s in parents) \
            and all(original in states for states in parent_states):
        # A copy this merge made: it holds a version of the original's, whose
        # writers it carries: its content's, and its bit's (a chmod joined to it).
        # Those of a side that held that very version, where one did; else those
        # of a write the sides list whose own commit held it (a copy holds a
        # version as its node wrote it: seed 4570184, gamma's B,644 out of its
        # side's line merge at 755 took the bit of the other side's E,644 made
        # anew, and delta's delete of that copy then settled E); else a
        # chmod's own content, where its commit held the copy's: the same content
        # written at the name beside it (a file made anew, say) is not the copy's.
        # Else the write of that content that a side's line merge holds.
        names = [states[original] for states in parent_states]
        whole = [s for s in names if tuple(r.value for r in s) == values] or [
            held for held in (history.states[w][original] for w in sorted(
                {w for s in names for r in (BODY, BIT) for w in s[r].writers})
                if original in history.states.get(w, {}))
            if tuple(r.value for r in held) == values]
        bit = frozenset(w for s in whole or names if s[BIT].value == values[BIT]
                        for w in s[BIT].writers)
        own = [history.states[w][original] for w in sorted(bit)
               if not whole and original in history.states.get(w, {})]
        own = [s for s in own if s[BODY].value == values[BODY]]
        body = frozenset(w for s in whole or own or names if s[BODY].value == values[BODY]
                         for w in s[BODY].writers) or \
            frozenset(w for s in names for w in s[BODY].writers
                      if history.wrote.get((original, BODY, w)) == values[BODY]) or \
            frozenset([commit])
        bit = bit or body
        return Reg(values[HERE], body | bit), Reg(values[BODY], body), Reg(values[BIT], bit)
    joined = join(history, path, parents, commits)
    losers = set_aside(history, path, joined, values, copied) if version and copied is not None \
        else (set(), set(), set())
    # A write a delete followed, which lost here to one it never saw, is no longer
    # the name's: a side that never saw the delete (a chmod of that version, say)
    # still holds it, and meets the write that won as a version of its own.
    deletes = deletes_among(history, path, joined[HERE][1])
    state = []
    for r, (value, top, candidates) in enumerate(joined):
        top = top - losers[r]
        if r == BIT and version and not top and losers[r]:
            # Every latest write of the bit lost here (a file made anew, gone to a
            # copy with its bit): the name's bit is the kept version's, which its
            # content's writes stand for (seed 4230242: else an older chmod, which
            # the lost file's writer had seen deleted, came back onto it).
            top = state[BODY].writers
        if version and deletes and candidates is not None and r != HERE:
            top = top - {w for w, v in candidates.items() if v != values[r]
                         and any(history.follows(d, w) for d in deletes)}
        if candidates is not None:
            value = values[r] if version or r == HERE else candidates[max(candidates)]
        if (r == HERE or version) and value != values[r]:
            # The merge decided otherwise (an older rule, or a narrower look back):
            # what it holds stands for the same writes, not as a write of its own,
            # which would be newer than every write it merged.
            value = values[r]
        state.append(Reg(value, top))
    return tuple(state)


def set_aside(history: History, path: bytes, joined: List[tuple], values: tuple,
              copied: set) -> Tuple[set, set, set]:
    """The writes of concurrent contents a merge did not keep at the name, per
    register: those whose content went to a conflict copy (the merge holds one with
    it).  A write that merged into the name stays its writer, however its line merge
    came out (equal to another write's content, say: a delete of that one's copy
    never saw it).  A loser's bit that the name
    holds and no kept write explains (its chmod, joined to the kept content) stays
    its write there, and so does its file: a delete that never saw that bit does not
    take the file.  A file made anew that lost is not the name's bit."""
    _, _, contents = joined[BODY]
    if contents is None:
        return set(), set(), set()
    aside = {w for w, v in contents.items() if v is not None and v != values[BODY]
             and v in copied}
    _, bit_top, _ = joined[BIT]
    changes = history.changes.get(path, {})

    def own_bit(w: str) -> bool:
        change = changes.get(w)
        return history.wrote.get((path, BIT, w)) == values[BIT] and change is not None \
            and None not in change and changed_register(change, BIT) \
            and not any(history.wrote.get((path, BIT, o)) == values[BIT]
                        for o in bit_top - aside)
    bits = {w for w in aside & bit_top if own_bit(w)}
    return aside - bits, aside, aside - bits


def maker_of(repo: Repo, graph: CommitGraph, writers: Iterable[str]) -> Maker:
    """Who wrote a version, when: the newest of its writers."""
    return max((Maker(graph.info[w][1], graph.info[w][2]) for w in writers), default=NOBODY)


def causal_merge_tree(repo: Repo, bases: List[str], sides: Tuple[str, str]) -> str:
    changed = {c.path for c in tree_changes(repo, *sides)}
    alike = deleted_on_one_side(repo, sides) - changed
    if not changed and not alike:
        return repo.out("rev-parse", sides[0] + "^{tree}")
    paths = {p for path in changed | alike for p in copy_chain(path)}
    history = read_history(repo, sides, bases, sorted(paths))
    graph = repo.graph
    settled: Dict[bytes, Version] = {}
    copies: Dict[bytes, Tuple[Version, frozenset]] = {}
    for path in sorted(changed, key=lambda p: (copy_original(p) is not None, p)):
        kept, made = settle(repo, graph, history, path, sides)
        settled[path] = kept
        for name, version, writers in made:
            copies[name] = version, writers
    for path in sorted(alike):
        states = [history.states[s][path] for s in sides]
        if all(s[HERE].value for s in states) and \
                join(history, path, states, list(sides))[HERE][0] is False:
            settled[path] = None
    for name, (version, writers) in list(copies.items()):
        name = copy_name(repo, graph, history, sides, name, version, writers)
        if not name:
            continue
        # The name is its content's.  Where a user changed the copy there (its
        # bit), its own history settled it above, and that stands; else this
        # version takes it (new, or its bit changed since).
        there = settled[name] if name in settled else tree_versions(repo, sides[0], [name])[name]
        if there and there != version and name in settled:
            states = [history.states[s][name] for s in sides]
            top = {w for _, ws, _ in join(history, name, states, list(sides)) for w in ws}
            if top & history.changes.get(name, {}).keys():
                continue
        if not there or there[1] == version[1]:
            settled[name] = version
    settle_one_sided_copies(history, settled, sides, changed)
    return write_merged_tree(repo, sides[0], move_off_folders(repo, graph, history, settled,
                                                              sides))


def deleted_on_one_side(repo: Repo, sides: Tuple[str, str]) -> set:
    """The paths a node's commit that only one side has deleted.  Both sides may
    hold such a path alike and still merge to no file: each kept it because an
    edit there beat a delete it never saw, but the deletes, together, saw every
    write (seed 4420004: beta wrote C and deleted it; gamma saw alpha's chmod and
    deleted; beta's merge kept C with the chmod's bit, and so did delta's, each
    beating one delete).  What a merge holds is its sides' writes joined; equal
    trees are only the common case of that."""
    graph = commit_graph(repo, list(sides))
    hand = [c for _, c in graph.apart([sides[0]], [sides[1]]) if len(graph.parents(c)) == 1]
    diffs = commit_diffs(repo, hand)
    return {path for c in hand for path, _, new in diffs[c] if new is None}


def settle_one_sided_copies(history: History, settled: Dict[bytes, Version],
                            sides: Tuple[str, str], changed: set) -> None:
    """A conflict copy that one side holds, where the other never had it or put
    its version elsewhere (it lists no write of the copy the holder does not: no
    user deleted it), holds a version the merge keeps once: not beside the very
    version at the name, and not nowhere.  So where the merge puts that version
    back at the name, which the holder had put aside, the copy goes (seed 3810046:
    a folder had displaced gamma's file into a copy; where delta's file replaced
    the folder, gamma's took the name back, and a user's delete of the copy left
    it there).  Where the merge keeps it at the name no longer, the copy stays,
    whichever side join took (seed 3841038: one side held gamma's x at the name,
    the other in its copy with the name deleted; each path took the side that did
    not hold it, whichever commit id sorted first).  Only the paths this merge
    changed: a copy it made just now is none of these, and a history a watcher
    kept may hold states of paths a fresh one would not read (see copy_name)."""
    for path in sorted(changed):
        original = copy_original(path)
        if not original:
            continue
        states = [history.states[s].get(path) for s in sides]
        names = [history.states[s].get(original) for s in sides]
        if None in states or None in names:
            continue
        holders = [i for i in (0, 1) if states[i][HERE].value]
        if len(holders) != 1:
            continue
        holder, other = states[holders[0]], states[1 - holders[0]]
        if not other[HERE].writers <= holder[HERE].writers:
            continue
        version = held_version(holder)
        at_name = settled[original] if original in settled else held_version(names[0])
        if at_name == version and held_version(names[holders[0]]) != version:
            settled[path] = None
        elif at_name != version and settled[path] is None and \
                other[HERE].writers == holder[HERE].writers:
            settled[path] = version


def settle(repo: Repo, graph: CommitGraph, history: History, path: bytes,
           sides: Tuple[str, str]) -> Tuple[Version, List[Tuple[bytes, Version, frozenset]]]:
    """(the version the merge keeps at path, [(copy name, version, its writers)])."""
    states = [history.states[s][path] for s in sides]
    if copy_deleted_unseen(history, path, sides):
        return None, []
    (here, here_top, heres), (body, body_top, bodies), (bit, bit_top, bits) = \
        join(history, path, states, list(sides))
    if heres is not None:
        # An edit beats a delete, but a copy's name is its content's: a user's
        # delete of a copy deletes that version there, whoever else made it (not
        # a chmod of it the delete never saw: another version).
        gone = {registers(history.changes[path][d][0])[BODY:] for d, alive in heres.items()
                if alive is False and d in history.changes.get(path, {})}
        here = not copy_original(path) or any(
            (history.wrote.get((path, BODY, w), body),
             history.wrote.get((path, BIT, w), bit) if (path, BIT, w) in history.wrote and
             history.wrote[path, BIT, w] is not None else bit) not in gone
            for w, alive in heres.items() if alive)
    if not here:
        return None, []
    changes = history.changes.get(path, {})
    deleted = deletes_among(history, path, here_top)
    if bodies is not None:
        bodies = {w: v for w, v in bodies.items() if v is not None}
        if len(set(bodies.values())) == 1:
            body, bodies = next(iter(bodies.values())), None
    if bodies is None and bits is None:
        # A file made anew has nothing in common with a version written beside it
        # unaware (a chmod of the file it replaced): even where each register
        # agrees, the two versions collide.  Not where a side's state lists every
        # joined write: a merge settled them already, and its version stands (here
        # and for the chmods below).
        settled = any(s[HERE].writers == here_top and s[BODY].writers == body_top
                      and s[BIT].writers == bit_top for s in states)
        anew = {w for w in here_top if w in changes and changes[w][0] is None and changes[w][1]}
        if anew and heres is None and here and not settled:
            versions = {w: registers(held_version(history.states[w][path]))[BODY:] for w in here_top
                        if w in changes and changes[w][1]}
            if len(set(versions.values())) > 1 and set(versions) - anew:
                return settle_versions(repo, graph, history, path, versions)
        if body is None:
            # No write of content here (only copies' deletes): a side's file as it is,
            # the one whose content a newest bit write held (seed 4090106: delta's
            # delete of its D's copy and eps's of its A's left alpha's chmod of A,
            # not D with its bit).
            held = [s[BODY].value for s in states if s[HERE].value and s[BODY].value]
            chmodded = {history.states[w][path][BODY].value
                        for w in bit_writes(history, path, bit_top)
                        if path in history.states.get(w, {})}
            body = next((b for b in held if b in chmodded), next(iter(held), None))
        # A chmod of a content that the one which counts did not grow from (one a
        # copy's delete settled, say: seed 3610552) is a version of its own, unless
        # a delete here saw it.  Where a delete saw the content and the chmod beat
        # the delete, the content is gone and the chmod's version stands alone
        # (seed 3760542: C,755, not A with C's bit).  The content's writes are those
        # that made it (not a copy's delete beside it: seed 3800014); a bit written
        # with a content that a counting one replaced goes with that content.
        made = {w for w in body_top if wrote_content(history, path, w, body)} or body_top
        apart = [w for w in bit_top if w in changes and changes[w][1]
                 and (path, BODY, w) not in history.wrote
                 and not grew_from_chmodded(graph, history, path, w, made)
                 and not moved_on(history, path, w, sides)] if body and not settled else []
        seen = [w for w in apart if any(history.follows(d, w) for d in deleted)]
        if len(seen) < len(apart):
            # (Not a bit written with a content a later write replaced, nor a
            # chmod its node wrote over since: its bit is that write's, seed
            # 4780028: eps's E,755, which eps's F replaced, took the name.)
            chmods = {w for w in bit_top if not moved_on(history, path, w, sides)}
            gone = {w for w in body_top if any(history.follows(d, w) for d in deleted)}
            versions = {w: registers(held_version(history.states[w][path]))[BODY:]
                        for w in chmods | body_top - gone if w in changes and changes[w][1]}
            if len(set(versions.values())) > 1:
                return settle_versions(repo, graph, history, path, versions)
            if versions and gone:
                return as_file(*next(iter(versions.values()))), []
        # Where every newest bit write is such a chmod and a delete here saw it, its
        # version is gone, bit and all: the content keeps the bit it had (seed
        # 3770828, checked along the way: alpha's F, over B over D, beat beta's
        # delete of A,755 and took eps's chmod of A with it, F,755).
        own = {s[BIT].value for s in states if s[HERE].value and s[BODY].value == body}
        if seen and len(seen) == len(bit_writes(history, path, bit_top)) and len(own) == 1:
            bit = own.pop()
        return (as_file(body, bit) if body else None), []
    # The versions of the concurrent writes, each as its node wrote it.
    writers, joiners = set(bodies or ()) | set(bits or ()), set()
    if bodies is not None:
        # Contents collide: a version is what a node's commit held, whole (never
        # one write's content with another's bit, nor a write its own node moved
        # on from: A, then A,755 is one version, A,755).  A chmod made on a
        # content some write here replaced, unaware, is no version of its own:
        # its bit joins the version that keeps the name, after the contents
        # settled (so it dates none), or stays as its node wrote it.
        for w in set(bits if bits is not None else bit_top) - set(bodies):
            if w in changes and changes[w][1]:
                held = history.states[w][path][BODY]
                (writers if held.writers & set(bodies) or held.value in bodies.values()
                 else joiners).add(w)
        writers = set(latest(history, path, writers | joiners))
        joiners &= writers
    else:
        # One content: each bit joins it, but a chmod of a content that a write
        # it never saw replaced (a file made anew, say) is its own version, as
        # its node wrote it, beside the content's writer's.
        # (A copy's delete among the content's latest writes wrote no content:
        # seed 3610412.)
        joiners = {w for w in bits if w in changes and changes[w][1]
                   and (path, BODY, w) not in history.wrote
                   and not any(history.wrote.get((path, BODY, x)) is not None
                               for x in history.states[w][path][BODY].writers & body_top)
                   and history.states[w][path][BODY].value != body}
        if joiners:
            joiners = set(latest(history, path, writers | {
                w for w in body_top if w in changes and changes[w][1]})) & joiners
            writers = set(latest(history, path, writers | joiners | {
                w for w in body_top if w in changes and changes[w][1]}))
    versions = {}
    for w in writers:
        if (bodies is not None or joiners and w not in bits or w in joiners) and (
                w in changes or w in history.leaves):
            held = registers(held_version(history.states[w][path]) if path in history.states[w]
                             else None)
            if held[HERE]:
                versions[w] = held[BODY], held[BIT]
            continue
        own = history.states.get(w, {}).get(path)
        b = body if bodies is None else \
            history.wrote.get((path, BODY, w), own and own[BODY].value)
        t = bit if bits is None else history.wrote.get((path, BIT, w), own and own[BIT].value)
        if b is not None:
            versions[w] = (b, bool(t))
    # A deleter's earlier edits lose where they collide with edits it never saw;
    # a chmod it saw still joins the name (the delete wrote no bit), or is gone.
    gone = {w for w in versions if any(history.follows(d, w) for d in deleted)}
    alive = {w: v for w, v in versions.items() if w not in gone - joiners}
    kept, copies = settle_versions(repo, graph, history, path, alive or versions, joiners,
                                   gone & joiners if alive else set())
    # A bit no write contests stands at the name (one value), whichever content
    # kept it; the copies hold their versions as their nodes wrote them.  Not the
    # bit of a file made anew that went to a copy: it has nothing in common with
    # the file at the name.  Nor one that only copies' deletes kept, each side its
    # own (seed 3620006): each user kept the bit of the content its name held.  Nor
    # a chmod of a content the one at the name did not grow from (one that collided
    # with it: seed 3610717).  Nor a bit the sides settled apart (the same writes,
    # each side the bit of the content its name kept): it goes with its content
    # (seed 3710128: gamma's C over its A,755, where beta's edit had beaten A,755
    # and kept its own 644).  The same real bit writes: a copy's delete, which
    # writes none, listed on one side only, changes nothing (seed 4130006: alpha's
    # A kept the 755 of its chmod of F, which eps's E had beaten and kept 644).
    apart = len({s[BIT].value for s in states}) > 1 and len(
        {bit_writes(history, path, s[BIT].writers) for s in states}) == 1
    if bodies is not None and bits is None and kept and kept[0] in FILE_MODES and (
            bit_top & changes.keys() and not apart
            or len({s[BIT].value for s in states}) == 1) and not any(
            changes.get(w, (0, 0))[0] is None and versions.get(w) != registers(kept)[BODY:]
            for w in bit_top) and all(
            grew_from_chmodded(graph, history, path, w, {
                k for k, v in bodies.items() if v == registers(kept)[BODY]})
            for w in bit_top & changes.keys()):
        kept = as_file(registers(kept)[BODY], bit)
    return kept, copies


def grew_from_chmodded(graph: CommitGraph, history: History, path: bytes, chmod: str,
                       writers: Iterable[str]) -> bool:
    """Did the content these writes made grow from the one chmod set the bit of?
    (From the writes that made that content: not a copy's delete its register lists,
    whose name held another: seed 4350038, eps's deletes of copies beside its F.)"""
    lineage = content_lineage(graph, history, path, writers)
    state = history.states.get(chmod, {}).get(path)
    return state is None or all(in_lineage(history, lineage, c)
                                for c in content_makers(history, path, state[BODY]))


def content_writers(history: History, path: bytes, writes: Iterable[str]) -> set:
    """The writes of the content each of these writes' commits held at path."""
    return {b for w in writes if path in history.states.get(w, {})
            for b in history.states[w][path][BODY].writers}


def content_lineage(graph: CommitGraph, history: History, path: bytes,
                    writers: Iterable[str], bases: Iterable[str] = ()) -> set:
    """The writes of the contents these writes' content grew from: back through each
    write's parents' content writers (a copy's delete keeps what its name held), no
    further than the bases' history, nor than a file made anew (it grew from
    nothing: seed 3740014, C written over init made anew after a delete, did not
    grow from the init a chmod had set before)."""
    bases, lineage, todo = list(bases), set(), list(writers)
    changes = history.changes.get(path, {})
    while todo:
        w = todo.pop()
        if w not in lineage:
            lineage.add(w)
            if not (w in changes and changes[w][0] is None) and \
                    not history.by_bases(w, bases):
                todo += [b for p in graph.parents(w) if path in history.states.get(p, {})
                         for b in content_makers(history, path, history.states[p][path][BODY])]
    return lineage


def content_makers(history: History, path: bytes, register: Reg) -> set:
    """The writes that made a content register's value: those that wrote it, or,
    where none did, all of them (a line merge of their concurrent edits: seed
    4090050, gamma's C grew from the merge of beta's E and its own B)."""
    return {w for w in register.writers if wrote_content(history, path, w, register.value)} \
        or line_merged(history, path, register)


def line_merged(history: History, path: bytes, register: Reg) -> set:
    """The writes whose line merge a content register holds: all of its writes,
    where none of them wrote its value whole; else none."""
    return set() if any(wrote_content(history, path, w, register.value)
                        for w in register.writers) else set(register.writers)


def wrote_content(history: History, path: bytes, write: str, content) -> bool:
    """Is content at path what write wrote there (a window's first commit: what it
    held), or, for a copy's delete, what its name held?  A state may list writes
    whose content is no longer its own (seed 3800014: delta's copy delete beside
    A, still listed where alpha's restore of init had replaced A)."""
    wrote = history.wrote.get((path, BODY, write), content)
    if wrote is None:
        state = history.states.get(write, {}).get(path)
        return state is not None and state[BODY].value == content
    return wrote == content


def in_lineage(history: History, lineage: set, write: str) -> bool:
    """Is write in lineage, or in the history of a window's first commit that is?"""
    return write in lineage or any(history.follows(leaf, write)
                                   for leaf in lineage & history.leaves)


def name_held(history: History, copy: bytes, delete: str) -> bool:
    """Did the name hold the very version of the copy that delete deleted?"""
    state = history.states.get(delete, {}).get(copy_original(copy))
    change = history.changes.get(copy, {}).get(delete)
    return bool(state and change) and held_version(state) == change[0]


def copy_deleted_unseen(history: History, path: bytes, sides: Tuple[str, str]) -> bool:
    """Is path a conflict copy that one side holds and the other never had, where
    that other side deleted the file at the name after seeing every write the copy
    holds?  A delete wins over the versions it saw, in a copy made after it too."""
    original = copy_original(path)
    if not original:
        return False
    states = [history.states[s].get(path) for s in sides]
    names = [history.states[s].get(original) for s in sides]
    if None in states or None in names:
        return False
    for holder, other in ((0, 1), (1, 0)):
        copy, never = states[holder], states[other]
        if not copy[HERE].value or never[HERE].value or never[HERE].writers:
            continue
        deletes = [d for d in names[other][HERE].writers
                   if history.wrote.get((original, HERE, d)) is False]
        writers = copy[BODY].writers | copy[BIT].writers
        # (latest: a delete that saw a twin of a write saw that write.)
        if deletes and writers and not writers & history.changes.get(path, {}).keys() \
                and not latest(history, original, writers | set(deletes)) & writers:
            return True
    return False


def settle_versions(repo: Repo, graph: CommitGraph, history: History, path: bytes,
                    versions: Dict[str, Tuple[object, bool]], joiners: set = frozenset(),
                    gone: set = frozenset(), depth: int = 0
                    ) -> Tuple[Version, List[Tuple[bytes, Version, frozenset]]]:
    """Concurrent versions, newest first: each merges into what the newer ones
    made (its lines, its bit), or collides and goes to a conflict copy as its
    node wrote it.  Versions only joiners wrote (chmods) come last; those only
    gone ones wrote (a delete saw them) merge in or are dropped."""
    groups: Dict[Tuple[object, bool], set] = {}
    for w, version in versions.items():
        groups.setdefault(version, set()).add(w)

    def maker(version) -> Maker:
        body_writers = {w for w in groups[version] if (path, BODY, w) in history.wrote}
        return maker_of(repo, graph, body_writers or groups[version])
    order = sorted(groups, key=lambda v: (not groups[v] <= joiners, maker(v).when, v[0][1], v[1]),
                   reverse=True)
    kept, kept_writers, copies = order[0], set(groups[order[0]]), []
    for version in order[1:]:
        # (A version the name holds already is no collision: the same bytes, twice.)
        merged = kept if version == kept else merged_version(
            repo, history, path, kept, kept_writers, version, groups[version], depth)
        if merged:
            kept, kept_writers = merged, kept_writers | groups[version]
            continue
        if groups[version] <= gone:
            continue
        copied = as_file(*version)
        if groups[version] <= joiners:
            # A chmod whose bit collides: the bit joins the content where it can
            # (against the version both had), kept apart from the name's bit.
            copied = as_file(*merged_version(repo, history, path, (kept[0], version[1]),
                                             kept_writers, version, groups[version]) or version)
        name, _ = copy_of(repo, path, copied, maker(version), [])
        copies.append((name, copied, frozenset(groups[version])))
    return as_file(*kept), copies


def merged_version(repo: Repo, history: History, path: bytes, ours, our_writers: set,
                   theirs, their_writers: set, depth: int = 0):
    """Two versions written concurrently, merged against the version their writers
    both had: a side that kept its content or bit takes the other's, lines merge;
    None where they collide (a file made anew has nothing in common with another)."""
    changes = history.changes.get(path, {})
    if any(changes.get(w, (0, 0))[0] is None for w in our_writers | their_writers):
        return None
    bases = repo.graph.bases(sorted(our_writers), sorted(their_writers))
    states = [history.states[b][path] for b in bases if b in history.states]
    if not states or len(states) != len(bases):
        return None
    # Nor a content that grew from one made anew since the bases (a chmod of it
    # writes no content): its writer's file is no edit of what the bases held there.
    if grew_from_anew(repo.graph, history, path,
                      content_writers(history, path, our_writers | their_writers), bases):
        return None
    (here, _, heres), (base, _, bases_), (base_bit, bit_top, bits) = \
        join(history, path, states, bases)
    if heres is not None or not here:
        return None
    if bases_ is not None or bits is not None:
        # The merge bases hold concurrent versions: the version both had is what
        # this rule keeps at the name of them, as each side's merges of them did.
        if depth >= MAX_BASE_DEPTH:
            return None
        # A chmod of one of them dates that version, as settle's writers do at
        # the name (seed 3760172: gamma's chmod made A,B later than alpha's C,
        # which both sides' merges had put in a copy).
        chmods = {w for w in bit_top if bases_ is not None and w not in bases_
                  and (path, BODY, w) not in history.wrote
                  and path in history.states.get(w, {})
                  and history.states[w][path][BODY].writers & bases_.keys()}
        dated = {w for w in bases_ or () if any(history.follows(c, w) for c in chmods)}
        versions = {w: ((history.wrote.get((path, BODY, w)) if bases_ is None or w not in bases_
                         else bases_[w]) or base,
                        bool(bits[w] if bits is not None and w in bits else base_bit))
                    for w in set(bases_ or ()) - dated | set(bits or ())}
        versions.update({w: (history.states[w][path][BODY].value, bool(base_bit))
                         for w in chmods})
        if any(body is None for body, _ in versions.values()):
            return None
        kept, _ = settle_versions(repo, repo.graph, history, path, versions, depth=depth + 1)
        if not kept:
            return None
        base, base_bit = registers(kept)[BODY:]

    def rewrote(writers: set, r: int, value) -> bool:
        """Did a node write this register since the bases (back to their value)?
        The writes of a version's register are its writers' own and those of the
        register their commits held (seed 4300348: alpha's content, an edit after
        its bit was cleared back to 644, against delta's chmod to 755).  A write
        counts where its own commit changed the register, not where a merge listed
        it for one (seed 4540046: merges a watcher had read for its merge before,
        outside this one's window, listed two content writes as the bit's writers;
        a fresh process never read them, and the two merged that pair apart)."""
        held = {x for w in writers if path in history.states.get(w, {})
                and history.states[w][path][r].value == value
                for x in history.states[w][path][r].writers}
        changes = history.changes.get(path, {})
        return any(w in changes and changed_register(changes[w], r)
                   and not history.by_bases(w, bases)
                   for w in writers | held)
    if ours[1] != theirs[1] and (ours[1] == base_bit and rewrote(our_writers, BIT, ours[1]) or
                                 theirs[1] == base_bit and rewrote(their_writers, BIT, theirs[1])):
        return None                 # a bit written back is a change too: both kept
    bit = theirs[1] if ours[1] == base_bit else ours[1]
    if ours[0] == theirs[0]:
        return ours[0], bit
    # A bit set on the version both had joins a content grown from that version (or
    # one of those it merged), not one written beside it: D at the bases, a chmod of
    # D, and C written over F, which D had beaten (seed 3610552).  Of bases that
    # held several, the writers of the one kept (seed 3670733: a chmod of gamma's G,
    # which had beaten delta's D, does not join an edit of D).
    base_writers = {w for st in states if st[BODY].value == base for w in st[BODY].writers} \
        or {w for st in states for w in st[BODY].writers}

    def grew_from_base(writers: set) -> bool:
        lineage = content_lineage(repo.graph, history, path,
                                  content_writers(history, path, writers), bases)
        return any(in_lineage(history, lineage, c) for c in base_writers)
    if base_writers and any(
            chmodded[0] == base and chmodded[1] != base_bit and other[0] != base
            and not grew_from_base(writers)
            for chmodded, other, writers in ((ours, theirs, their_writers),
                                             (theirs, ours, our_writers))):
        return None
    if ours[0] == base and rewrote(our_writers, BODY, base) or \
            theirs[0] == base and rewrote(their_writers, BODY, base):
        return None                 # so is content written back
    if theirs[0] == base:
        return ours[0], bit
    if ours[0] == base:
        return theirs[0], bit
    if not all(v and v[0] == "file" for v in (base, ours[0], theirs[0])):
        return None
    merged = merge_text(repo, (FILE_MODE, base[1]), (FILE_MODE, ours[0][1]),
                        (FILE_MODE, theirs[0][1]))
    if not merged or any(undoes_lines(repo, history, path, merged[1], side[0][1], writers, bases)
                         for side, writers in ((ours, our_writers), (theirs, their_writers))):
        return None
    return ("file", merged[1]), bit


def undoes_lines(repo: Repo, history: History, path: bytes, merged: str, side: str,
                 writers: set, bases: List[str]) -> bool:
    """Does a line merge undo lines that a side wrote since the version both had?
    Lines written back to what that version held look unchanged, so the other
    side's edit of them would win unseen (seed 4240252: beta wrote C over gamma's
    init0, which alpha never had; against C, alpha's init0 won).  A write's lines
    are undone where its change, and the side's whole version, applied to the
    merge each change it: the line is still the side's, and the merge lost it."""
    if merged == side:
        return False
    changes = history.changes.get(path, {})
    for w in content_lineage(repo.graph, history, path,
                             content_writers(history, path, writers), bases):
        old, new = changes.get(w, (None, None))
        if not (old and new and old[0] in FILE_MODES and new[0] in FILE_MODES) or \
                history.by_bases(w, bases):
            continue
        if all(again is None or again[1] != merged
               for again in (merge_text(repo, (FILE_MODE, old[1]), (FILE_MODE, merged),
                                        (FILE_MODE, blob)) for blob in (new[1], side))):
            return True
    return False


def grew_from_anew(graph: CommitGraph, history: History, path: bytes, writers: set,
                   bases: List[str]) -> bool:
    """Does a content these writes made grow, since the bases, from a file made anew
    (an edit of a new file, say: seed 3610412, D written over a symlink made anew)?"""
    changes = history.changes.get(path, {})
    return any(w in changes and changes[w][0] is None
               and not history.by_bases(w, bases)
               for w in content_lineage(graph, history, path, writers, bases))


def move_off_folders(repo: Repo, graph: CommitGraph, history: History,
                     settled: Dict[bytes, Version], sides: Tuple[str, str]
                     ) -> Dict[bytes, Version]:
    """A file kept where the merge also keeps a folder of that name goes beside it
    as a conflict copy, named for its writer."""
    folders = {folder for path, version in settled.items() if version
               for folder in folders_of(path)}
    for path in sorted(p for p, v in settled.items() if v and p in folders):
        version = settled[path]
        states = [history.states[s].get(path) for s in sides]
        writers = frozenset(w for s in states if s and s[BODY].value == registers(version)[BODY]
                            for w in s[BODY].writers)
        name, _ = copy_of(repo, path, version, maker_of(repo, graph, writers), list(sides))
        name = copy_name(repo, graph, history, sides, name, version, writers)
        settled[path] = None
        if name:
            settled[name] = version
    return settled


def copy_name(repo: Repo, graph: CommitGraph, history: History, sides: Tuple[str, str],
              name: bytes, version: Version, writers: frozenset) -> Optional[bytes]:
    """Where a conflict copy of version goes: its name, or None where a user
    deleted that copy having seen its writes.  A node that wrote its content
    unaware of the delete keeps it, in a copy named for that node."""
    states = [history.states[s].get(name) for s in sides]
    if not all(states) or name not in history.changes:
        return name
    # (Only a delete the sides' history holds stands in the way: a name no side
    # ever held is free, whether or not an earlier merge read it.  So is a name
    # no node's commit touched, which a fresh history does not read: merges alone
    # made and moved that copy (seed 4040030: a watcher's kept history, which had
    # read it, dropped beta's copy; a fresh merge of the same two kept it).)
    here, top, _ = join(history, name, states, list(sides))[HERE]
    if here is not False or not top:
        return name
    # A delete of a copy of the very version its name held settled nothing: the user
    # kept that version, which goes beside the name again under a name of its own
    # (seed 3670702).
    deletes = [d for d in top if not name_held(history, name, d)]
    if not deletes:
        return copy_of(repo, copy_original(name), version, maker_of(repo, graph, top), [])[0]
    unseen = {w for w in writers if not any(history.follows(d, w) for d in deletes)}
    if not unseen:
        return None
    return copy_of(repo, copy_original(name), version, maker_of(repo, graph, unseen), [])[0]


def write_merged_tree(repo: Repo, start: str, settled: Dict[bytes, Version]) -> str:
    """start's tree with settled's paths set (None: removed), written by git."""
    repo.make_state_dir()
    index = os.path.join(repo.state_dir, f"merge-index-{os.getpid()}-{threading.get_ident()}")
    # Never split: a private index would leave its shared part behind in .git.
    env = {"GIT_INDEX_FILE": index, "GIT_CONFIG_COUNT": "1",
           "GIT_CONFIG_KEY_0": "core.splitIndex", "GIT_CONFIG_VALUE_0": "false"}
    absent = f"0 {'0' * len(start)}\t".encode()       # an --index-info line that drops a path
    # Removals first: a file may take the place of a folder's last file.
    entries = [absent + path for path, v in sorted(settled.items()) if v is None] + \
        [f"{v[0]} {v[1]}\t".encode() + path for path, v in sorted(settled.items()) if v]
    try:
        repo.git("read-tree", start, env=env)
        repo.git("update-index", "-z", "--index-info",
                 input=b"".join(e + b"\0" for e in entries), env=env)
        return repo.out("write-tree", env=env)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(index)


def tree_versions(repo: Repo, commit: str, paths: List[bytes]) -> Dict[bytes, Version]:
    """{path: its version in commit} for paths: read here where git need not be
    asked (see Repo.cheap_object), else from git."""
    found: Dict[bytes, Version] = dict.fromkeys(paths)
    tree = repo.tree_of(commit)
    if tree:
        for path in paths:
            version = version_in(repo, tree, path)
            if version == NO_BASE:
                break
            found[path] = version
        else:
            return found
    for chunk in range(0, len(paths), 1000):            # the command line's length
        listing = repo.git("ls-tree", "-z", commit, "--",
                           *map(os.fsdecode, paths[chunk:chunk + 1000]),
                           env={"GIT_LITERAL_PATHSPECS": "1"}).stdout
        for entry in filter(None, listing.split(b"\0")):
            meta, path = entry.split(b"\t", 1)
            mode, kind, oid = meta.decode().split()
            # (A folder holds no file, as version_in says: seed 4350199, where a
            # watcher's cached trees and a fresh process's git made two merges.)
            if path in found and kind != "tree":
                found[path] = (mode, oid)
    return found


def version_in(repo: Repo, tree: str, path: bytes) -> Version:
    """path's version in a tree (None: not there); NO_BASE: not known without
    git (a folder on the way cannot be read here)."""
    *folders, name = path.split(b"/")
    for folder in folders:
        entries = repo.tree_entries(tree)
        if entries is None:
            return NO_BASE
        if folder not in entries or entries[folder][0] != FOLDER_MODE:
            return None
        tree = entries[folder][1]
    entries = repo.tree_entries(tree)
    if entries is None:
        return NO_BASE
    if name not in entries or entries[name][0] == FOLDER_MODE:
        return None
    mode, oid = entries[name]
    return mode.decode(), oid


def copy_of(repo: Repo, path: bytes, version: Version, maker: Maker,
            bases: List[str]) -> Tuple[bytes, Version]:
    """The conflict copy of path's version: named for the node that made it, when.
    A version older than every commit a merge reads is named for the first of
    those (a merge's: "unknown"): who made it is in history no merge reads — a
    host past its history horizon may not have it."""
    when, who = maker
    if not when:
        when = max(commit_times(repo, bases), default=0)
    if not NODE_NAME_RE.fullmatch(who) or who == MERGE_IDENTITY[0]:
        who = "unknown"
    name = conflict_copy_name(os.fsdecode(path), who, when, version[1])
    return os.fsencode(name), version


def commit_diffs(repo: Repo, commits: List[str]) -> Dict[str, List[Tuple[bytes, Version, Version]]]:
    """{commit: [(path, old, new)] against each parent in turn}, from one diff-tree
    for those this process has not read before: the walks of one round, and of the
    rounds after it, cross the same commits again and again.  A commit that
    changed very many paths (an import) is not kept.  (Compared in Python through
    the fold's cat-file instead, a fold took twice as long: big folders.)"""
    found = {c: repo.merge_memo[("diffs", c)] for c in commits if ("diffs", c) in repo.merge_memo}
    asked = [c for c in commits if c not in found]
    raw = repo.git("diff-tree", "--stdin", "-m", "-r", "-z", "--root", "--no-renames",
                   input="".join(c + "\n" for c in asked).encode(), env=no_index(repo)
                   ).stdout.split(b"\0") if asked else []
    diffs: Dict[str, List[Tuple[bytes, Version, Version]]] = {c: [] for c in asked}
    commit, at = "", 0
    while at < len(raw):                # COMMIT, then :MODES IDS KIND and PATH per file
        if raw[at].startswith(b":"):            # one diff per parent
            old_mode, new_mode, old_oid, new_oid, _ = raw[at][1:].decode().split()
            diffs[commit].append((raw[at + 1], as_version(old_mode, old_oid),
                                  as_version(new_mode, new_oid)))
            at += 2
        else:
            commit, at = raw[at].decode(), at + 1
    for commit in asked:
        if len(diffs[commit]) <= 1000:
            remember(repo, ("diffs", commit), diffs[commit])
    return {**found, **diffs}


def merge_text(repo: Repo, base: Version, ours: Version, theirs: Version) -> Version:
    """git's line merge of three versions of a regular file, None if the edits
    collide (or a version is binary, or not a regular file).  The executable bit
    merges like a line: a side that changed it wins."""
    if not all(v and v[0] in FILE_MODES for v in (base, ours, theirs)):
        return None
    key = ("merge-text", base, ours, theirs)
    known = repo.merge_memo.get(key, NO_BASE)
    if known == NO_BASE or known and not repo.has_object(known[1]):    # pruned since
        known = line_merge(repo, base, ours, theirs)
        remember(repo, key, known)
    return known


def line_merge(repo: Repo, base: Version, ours: Version, theirs: Version) -> Version:
    texts = blob_texts(repo, [ours[1], base[1], theirs[1]])
    if surely_collides(*texts):
        return None
    with merge_inputs(repo, texts) as (files, fds):
        merged = repo.git("merge-file", "-p", "-q", *files, env=MERGE_ENV, check=False,
                          pass_fds=fds)
    if merged.returncode != 0:
        return None
    blob = repo.out("hash-object", "-w", "--stdin", input=merged.stdout)
    return merged_bit(base, ours, theirs), blob


def merged_bit(base: Version, ours: Version, theirs: Version) -> str:
    """The file mode of a line merge: a side that changed the executable bit wins."""
    return theirs[0] if ours[0] == base[0] else ours[0]


def surely_collides(ours: bytes, base: bytes, theirs: bytes) -> bool:
    """Would git's line merge of these report a conflict, for sure?  Where one side
    kept no line of the base, its change is one hunk over the whole file, which
    every change of the other side overlaps; where the two sides share no line
    either, no part of that overlap is the same change: git's merge-file
    conflicts, whatever its diff.  Asked first, it spares a fold a git process per
    merge of small files rewritten whole (in a chaos run's fold, 97 merges of 97;
    the suite checks it against git on random files)."""
    mine, old, other = (set(text.splitlines()) for text in (ours, base, theirs))
    if not (mine and old and other):
        return False
    return (not mine & old and not mine & other and theirs != base) or \
        (not other & old and not other & mine and ours != base)


@contextlib.contextmanager
def merge_inputs(repo: Repo, texts: List[bytes]) -> Iterator[Tuple[List[str], List[int]]]:
    """(files, fds): files holding texts, for git merge-file, which reads only
    files.  On Linux in memory (memfd), passed to git as open files: a fold's
    hundred line merges would otherwise make and remove 400 names in .git, which
    cost a third of a fold's time (bench/HISTORY.md).  Elsewhere, a folder."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fds: List[int] = []
        try:
            for text in texts:
                fds.append(os.memfd_create("gtfc-merge"))
                view = memoryview(text)
                while view:
                    view = view[os.write(fds[-1], view):]
            yield [f"/proc/self/fd/{fd}" for fd in fds], fds
        finally:
            for fd in fds:
                os.close(fd)
        return
    import shutil, tempfile             # see "Imported where used"
    repo.make_state_dir()
    folder = tempfile.mkdtemp(dir=repo.state_dir, prefix="merge-")
    try:
        files = [os.path.join(folder, name) for name in ("ours", "base", "theirs")]
        for name, text in zip(files, texts):
            with open(name, "wb") as f:
                f.write(text)
        yield files, []
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def conflict_copy_name(path: str, node: str, when: int, blob: str) -> str:
    """notes.txt from node beta at T → notes.conflict-beta-20261124-213000-1a2b3c4d.txt

    The blob id makes the name unique to the content: two different versions never
    compete for one copy name, so a copy never needs a copy of its own."""
    stem, ext = os.path.splitext(path)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(when))
    return f"{stem}{COPY_MARK}{node}-{stamp}-{blob[:8]}{ext}"


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def copy_pathspecs(rel: str) -> List[str]:
    """git pathspecs for rel and its conflict copies."""
    stem, ext = os.path.splitext(rel)
    return [":(literal)" + rel, ":(glob)" + glob_escape(stem) + COPY_MARK + "*" + glob_escape(ext)]


COPY_NAME_RE = re.compile(b"(.*)" + re.escape(COPY_MARK.encode()) +
                          rb"[^/]*-\d{8}-\d{6}-[0-9a-f]{8}([^/]*)")    # conflict_copy_name's


@functools.lru_cache(maxsize=1 << 16)          # a fold asks for each path it walks
def copy_original(path: bytes) -> Optional[bytes]:
    """b"a/notes.conflict-beta-20261124-213000-1a2b3c4d.txt" -> b"a/notes.txt";
    None: not a conflict copy's name."""
    match = COPY_NAME_RE.fullmatch(path) if COPY_MARK.encode() in path else None
    return match.group(1) + match.group(2) if match else None


def names_a_copy_of(name: str, rel: str) -> bool:
    """Is name (a path, or a name in rel's folder) a conflict copy of rel?"""
    stem, ext = os.path.splitext(rel)
    if "/" not in name:
        stem = os.path.basename(stem)
    return name.startswith(stem + COPY_MARK) and name.endswith(ext) and \
        "/" not in name[len(stem):]


def folders_of(path: bytes) -> List[bytes]:
    """b"a/b/c" -> [b"a", b"a/b"]"""
    parts = path.split(b"/")
    return [b"/".join(parts[:n]) for n in range(1, len(parts))]


def update_worktree(repo: Repo, old: str, new: str) -> Optional[str]:
    """Move HEAD and the files from old to new; None on success.  Else the reason, with
    nothing changed: a file written since we committed is not clobbered, but
    committed and merged on the next attempt."""
    changes = tree_changes(repo, old, new)
    displace_ignored(repo, changes)
    # A power cut between git writing the files and HEAD moving would leave files
    # that are neither old's nor new's: the journal, written just before git
    # writes, says to finish the move (see finish_interrupted_checkout).
    journal = checkout_journal(repo)
    kept_meta = metadata_kept(repo)
    umask = CHECKOUT_UMASK if kept_meta else -1
    made = folders_to_make(repo, changes) if kept_meta else []
    with keep_old_inodes(repo, changes) as kept:
        # Their modes before the checks below: a chmod after it is on the old file.
        replaced = inode_modes(kept, changes)
        if not changes:                 # the same files (a merge that changed none)
            proc = None
        elif paths_alone_will_do(repo, changes, kept):
            # Only the changed paths: read-tree would look at every file in the tree.
            dirty = changed_since_commit(repo, changes, kept)
            if dirty:
                return f"{os.fsdecode(dirty)}: changed since it was committed"
            # Nor a mode or owner changed since (git status does not see a chmod):
            # recorded now, it is committed and merged on the next attempt.
            recorded = record_metadata(repo, [c.path for c in changes if c.kind != "A"
                                              and c.old_mode in FILE_MODES]) if kept_meta else []
            if recorded:
                return f"{os.fsdecode(recorded[0])}: changed since it was committed"
            listed = b"\0".join(c.path for c in changes)
            write_file_atomic(journal, f"{old} {new}\n")
            held: list = []
            taken = take_new_paths(repo, changes, held)
            kept.extend(held)
            if taken:
                proc = subprocess.CompletedProcess(
                    (), 1, b"", f"{os.fsdecode(taken)}: created since gtfc looked".encode())
            else:
                proc = repo.git(
                    "restore", "-q", f"--source={new}", "--staged", "--worktree",
                    "--no-overlay", "--pathspec-from-file=-", "--pathspec-file-nul",
                    input=listed, env={"GIT_LITERAL_PATHSPECS": "1"}, check=False,
                    umask=umask)
            if proc.returncode != 0:
                give_back_new_paths(repo, held)
                # restore stages even the files it could not write (a folder not
                # ours): put the old entries back, or the next commit would take
                # them for our own adds and deletes, and spread the loss.
                repo.git("reset", "-q", old, "--pathspec-from-file=-", "--pathspec-file-nul",
                         input=listed, env={"GIT_LITERAL_PATHSPECS": "1"}, check=False)
        else:
            # Our hard links changed those files' ctime: read-tree must judge them
            # by mtime and size, or it refuses every file we linked (the links keep
            # what a same-size, same-mtime write would have changed).
            write_file_atomic(journal, f"{old} {new}\n")
            proc = repo.git("-c", "core.trustctime=false", "read-tree", "-m", "-u", old,
                            new, check=False, umask=umask)
        if proc and proc.returncode != 0:
            os.unlink(journal)          # git refused before writing: nothing to finish
            return last_line(proc.stderr)
        as_written = make_durable(repo, changes)
        repo.git("update-ref", "-m", "gtfc: integrate", "HEAD", new, old)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(journal)
        chmodded = chmods_on_replaced(replaced, kept)
    if kept_meta:
        apply_metadata(repo, changes, made, as_written, chmodded)
    written = {c.path: c for c in changes} if len(changes) <= MAX_LISTED_PATHS else {}
    members = any(c.path.startswith(NODES_DIR.encode() + b"/") for c in changes)
    repo.checked_out = (new, written, members)
    return None


def inode_modes(kept, changes: List[Change]) -> Dict[bytes, int]:
    """The modes of the kept files (keep_old_inodes) that git is to replace with a
    new version, before gtfc checks they are as committed."""
    replacing = {c.path for c in changes if c.kind in ("M", "T") and c.new_mode in FILE_MODES}
    modes = {}
    for path, _, link in kept:
        if path in replacing:
            with contextlib.suppress(OSError):
                modes[path] = stat.S_IMODE(os.lstat(link).st_mode)
    return modes


def chmods_on_replaced(before: Dict[bytes, int], kept) -> Dict[bytes, int]:
    """The modes users gave kept files after inode_modes looked, before git replaced
    them: a chmod then lands on the old file, and goes to the new one (a chmod
    racing a peer's edit keeps both; new users' trials lost every one made in the
    few ms before the replacement)."""
    after = {}
    for path, _, link in kept:
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(os.lstat(link).st_mode)
            if path in before and mode != before[path]:
                after[path] = mode
    return after


def checkout_journal(repo: Repo) -> str:
    """.git/gtfc/checking-out: "OLD NEW" while update_worktree moves the files."""
    return os.path.join(repo.state_dir, "checking-out")


def make_durable(repo: Repo, changes: List[Change]) -> Dict[bytes, os.stat_result]:
    """The files a checkout wrote, on the disk before HEAD says they are there; each
    as git left it (its fstat: see apply_one), unless there were many."""
    written = [c.path for c in changes if c.kind != "D" and c.new_mode in FILE_MODES]
    if len(written) > MAX_LISTED_PATHS:
        os.sync()
        return {}
    found = {}
    for path in written:
        with contextlib.suppress(OSError):      # gone already: nothing to keep
            fd = os.open(os.path.join(repo.path, os.fsdecode(path)), os.O_RDONLY)
            try:
                found[path] = os.fstat(fd)
                os.fsync(fd)
            finally:
                os.close(fd)
    return found


def displaced_path(repo: Repo, rel: str, stamp: Optional[str] = None) -> str:
    """Where gtfc sets aside a file no folder of the repo can hold (a peer's file
    over an ignored one, bytes whose folder is gone): .git/gtfc/displaced/<UTC
    time, or stamp>/rel, its folder made."""
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    target = os.path.join(repo.state_dir, "displaced", stamp, rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    return target


def finish_interrupted_checkout(repo: Repo) -> None:
    """After a crash in update_worktree: move the files the rest of the way to the
    commit it was checking out (and HEAD with them).  A file holding neither the
    old nor the new version is kept first: as a conflict copy beside it (someone
    wrote it meanwhile), or, empty and open for writing by no one (a write the
    crash cut short), in .git/gtfc/displaced/."""
    try:
        with open(checkout_journal(repo)) as f:
            old, new = f.read().split()
    except (FileNotFoundError, ValueError):
        return
    head = repo.head()
    changes = tree_changes(repo, old, new) if head in (old, new) else []
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    followed = kept_inodes(repo)
    for c in changes:
        full = os.path.join(repo.path, os.fsdecode(c.path))
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            continue
        # A file kept in the replaced folder is followed there (follow_replaced).
        if stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in followed or any(
                mode != NO_FILE and holds_blob(full, st, mode, oid)
                for mode, oid in ((c.old_mode, c.old_oid), (c.new_mode, c.new_oid))):
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_size or being_written(full, st)):
            # In the folder, where a program's bytes still to come are committed.
            target = os.path.join(repo.path, conflict_copy_name(
                os.fsdecode(c.path), repo.node, int(st.st_mtime), file_blob_id(full, new)))
            os.makedirs(os.path.dirname(target), exist_ok=True)
        else:
            target = displaced_path(repo, os.fsdecode(c.path), stamp)
        os.replace(full, target)
        warn(f"{repo.path}: {os.fsdecode(c.path)} held neither version when gtfc stopped "
             f"mid-checkout; what it held is kept at {target}")
    restored = changes and repo.git(
        "restore", "-q", f"--source={new}", "--staged", "--worktree", "--no-overlay",
        "--pathspec-from-file=-", "--pathspec-file-nul", input=b"\0".join(c.path for c in changes),
        env={"GIT_LITERAL_PATHSPECS": "1"}, umask=CHECKOUT_UMASK, check=False)
    if restored and restored.returncode != 0:
        # What is there now is old's, new's or kept: the usual round commits and
        # merges it, which ends in the same place.
        warn(f"{repo.path}: could not finish the checkout a stop interrupted "
             f"({last_line(restored.stderr)}); syncing from what is there")
    elif changes:
        as_written = make_durable(repo, changes)
        if metadata_kept(repo):
            apply_metadata(repo, changes, [], as_written)
        if head == old:
            repo.git("update-ref", "-m", "gtfc: finish an interrupted checkout", "HEAD", new, old)
        warn(f"{repo.path}: finished moving the files to {short(new)}, which a stop "
             "(a crash or a power cut) had interrupted")
    os.unlink(checkout_journal(repo))


def folders_to_make(repo: Repo, changes: List[Change]) -> List[bytes]:
    """The folders the checkout of changes will create (git makes them private
    under CHECKOUT_UMASK; apply_metadata gives them their mode)."""
    wanted = {folder for c in changes if c.kind != "D" for folder in folders_of(c.path)}
    return sorted(f for f in wanted
                  if not os.path.isdir(os.path.join(repo.path, os.fsdecode(f))))


# git writes files and folders readable by no one else (0600, 0700); their own
# modes are set after: a 600 file is never readable by others, not for a moment.
CHECKOUT_UMASK = 0o077


def apply_metadata(repo: Repo, changes: List[Change], made: List[bytes],
                   as_written: Optional[Dict[bytes, os.stat_result]] = None,
                   chmodded: Optional[Dict[bytes, int]] = None) -> None:
    """Give what the checkout of changes wrote (files, the folders it made in
    made) and whatever META_DIR's changed files name their modes and owners; make
    the empty folders META_DIR names, and remove those it no longer names.
    as_written, chmodded: see apply_one."""
    targets = set(made)
    written = {c.path for c in changes if c.kind != "D" and c.new_mode in FILE_MODES}
    for c in changes:
        named = meta_target(c.path)
        if named:
            targets.add(named[0])
    apply_all(repo, targets | written, as_written, chmodded)


def apply_all(repo: Repo, paths: Iterable[bytes],
              as_written: Optional[Dict[bytes, os.stat_result]] = None,
              chmodded: Optional[Dict[bytes, int]] = None) -> None:
    """apply_one for each of paths, deepest first (a folder's files before the
    folder); what could not be applied is noted."""
    as_written, chmodded = as_written or {}, chmodded or {}
    results = {os.fsdecode(path): apply_one(repo, path, as_written.get(path), chmodded.get(path))
               for path in sorted(paths, key=lambda p: (-p.count(b"/"), p))}
    note_unapplied(repo, results)


def apply_one(repo: Repo, path: bytes, as_written: Optional[os.stat_result] = None,
              users_mode: Optional[int] = None) -> Optional[str]:
    """Set path's mode and owner from META_DIR (or the default); None if all was
    applied, else what was not.  A user's chmod racing the checkout stays, to be
    committed as their change: users_mode, the mode they gave the file git replaced,
    just before (chmods_on_replaced); or one given since git wrote the file (it is
    as_written's inode, git's fstat, with another mode or a later ctime, or that
    fstat's ctime is past its mtime: git writes a file's bytes last)."""
    if is_gtfc_own(path):                   # gtfc's own files: the default modes
        full, own = os.path.join(repo.path, os.fsdecode(path)), None
    else:
        full, own = inside(repo, path), read_meta(repo, meta_path(path, True))
    if full is None:
        return f"not applied: {META_DIR} names a path outside the folder"
    try:
        st = os.lstat(full)
    except (FileNotFoundError, NotADirectoryError):
        if own is None:
            return None
        os.makedirs(full, mode=0o700)       # an empty folder a peer has
        st = os.lstat(full)
    if stat.S_ISLNK(st.st_mode):
        return None
    folder = stat.S_ISDIR(st.st_mode)
    meta = own if folder or is_gtfc_own(path) else read_meta(repo, meta_path(path, False))
    if folder and meta is None and is_empty_folder(full) and \
            not is_gtfc_own(path):
        with contextlib.suppress(OSError):  # a peer removed this empty folder
            os.rmdir(full)
        return None
    if meta is None:
        meta = (FOLDER_DEFAULT if folder else FILE_DEFAULTS[bool(st.st_mode & 0o100)], "", "")
    mode, user, group = meta
    why = None
    if user:
        why = NOT_ROOT if os.geteuid() != 0 else change_owner(full, user, group)
    mode = applied_mode(mode, st, owner_set=not why)
    if not folder and users_mode is not None:
        mode = users_mode
    elif not folder and as_written and os.path.samestat(st, as_written) and (
            st.st_mode != as_written.st_mode or st.st_ctime_ns != as_written.st_ctime_ns
            or as_written.st_ctime_ns > as_written.st_mtime_ns):    # before the fstat
        mode = stat.S_IMODE(st.st_mode)
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(full, mode)
    return why


def applied_mode(mode: int, st: os.stat_result, owner_set: bool) -> int:
    """The mode apply_one gives a file or folder (lstat st) whose record says mode:
    the executable bit is git's; setuid (and setgid on a file) only as root; an
    owner it could not set (owner_set False, as root): private."""
    folder = stat.S_ISDIR(st.st_mode)
    if not folder:
        mode = (mode & ~0o100) | (st.st_mode & 0o100)
    if os.geteuid() != 0:
        mode &= ~(0o4000 if folder else 0o6000)
    elif not owner_set:
        mode &= 0o700
    return mode


NOT_ROOT = "owners are recorded but not applied: gtfc does not run as root here"


def inside(repo: Repo, path: bytes) -> Optional[str]:
    """path in the folder, or None where it would lead elsewhere: a peer writes
    META_DIR, and gtfc may run as root, so no "..", no .git, and no symlink on the
    way (a peer's symlink to /etc and a mode for etc/shadow behind it)."""
    parts = os.fsdecode(path).split("/")
    if any(part in ("", ".", "..", ".git") for part in parts) or parts[0] == ".gtfc":
        return None
    folder = repo.path
    for part in parts[:-1]:
        folder = os.path.join(folder, part)
        if os.path.islink(folder):
            return None
    return os.path.join(folder, parts[-1])


def read_meta(repo: Repo, meta: bytes) -> Optional[Tuple[int, str, str]]:
    """(mode, user, group) from META_DIR's file meta; None: no file, or not one
    gtfc wrote (then the default applies)."""
    try:
        with open(os.path.join(repo.path, os.fsdecode(meta)), "rb") as f:
            match = META_RE.fullmatch(f.read(200).decode("utf-8", "replace"))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    if not match:
        return None
    return int(match.group(1), 8), match.group(2) or "", match.group(3) or ""


def change_owner(full: str, user: str, group: str) -> Optional[str]:
    """chown by name; None, or why not (a name this host lacks)."""
    import grp, pwd                     # see "Imported where used"
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return f"no user {user} here; kept private"
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return f"no group {group} here; kept private"
    os.chown(full, uid, gid, follow_symlinks=False)
    return None


def unapplied_path(repo: Repo) -> str:
    """.git/gtfc/metadata-unapplied: owners the last checkouts could not set."""
    return os.path.join(repo.state_dir, "metadata-unapplied")


def note_unapplied(repo: Repo, results: Dict[str, Optional[str]]) -> None:
    """Keep, for gtfc status, the paths whose owner could not be set (and whether
    gtfc runs as root), and say each new one once."""
    note = unapplied_path(repo)
    try:
        with open(note) as f:
            known = dict(line.split(": ", 1) for line in f.read().splitlines() if ": " in line)
    except FileNotFoundError:
        known = {}
    before = dict(known)
    for path, why in results.items():
        if not why:
            known.pop(path, None)
        elif why == NOT_ROOT:
            known.setdefault("*", why)
        else:
            known[path] = why
    for path, why in sorted(known.items()):
        if before.get(path) != why:
            warn(f"{repo.path}: {why}" if path == "*" else f"{repo.path}: {path}: {why}")
    if known != before:
        write_file_atomic(note, "".join(f"{p}: {w}\n" for p, w in sorted(known.items())))

# git restore matches each path against each pathspec: beyond ~100 paths, read-tree's
# walk of the whole tree (10,000 files) is the cheaper one.
MAX_CHECKOUT_PATHS = 100


def paths_alone_will_do(repo: Repo, changes: List[Change], kept) -> bool:
    """Can the checkout write just the changed paths, as safely as read-tree would?
    Not when a new path is taken (by an untracked file, or a folder that may hold
    some: read-tree refuses, a path checkout would delete them), when a file to
    replace could not be kept for checking, for nested repos, or for many paths."""
    if len(changes) > MAX_CHECKOUT_PATHS:
        return False
    linked = {path for path, _, _ in kept}
    for c in changes:
        if GITLINK_MODE in (c.old_mode, c.new_mode):
            return False
        full = os.path.join(repo.path, os.fsdecode(c.path))
        if c.kind == "A" and os.path.lexists(full):
            return False
        if c.old_mode in FILE_MODES and c.kind != "A" and c.path not in linked \
                and os.path.lexists(full):
            return False
    return True


def take_new_paths(repo: Repo, changes: List[Change], held: list) -> Optional[bytes]:
    """Take each path the checkout adds with an empty file of gtfc's, kept (listed in
    held) as keep_old_inodes keeps a replaced file: git unlinks what it finds at a
    path it writes, unread.  A program that creates the file after gtfc looked opens
    this one instead, and follow_replaced keeps its bytes as a copy.  The first path
    a program took before us, else None (the checkout is refused: committed next)."""
    os.makedirs(replaced_folder(repo), exist_ok=True)
    prefix = os.path.join(replaced_folder(repo), f"{time.time_ns()}-new-")
    for i, c in enumerate(c for c in changes if c.kind == "A"):
        folder = os.path.join(repo.path, os.fsdecode(os.path.dirname(c.path)))
        if b"/" in c.path and (os.path.islink(folder) or not os.path.isdir(folder)):
            continue                # nor can a program's file be there yet
        full, link = os.path.join(repo.path, os.fsdecode(c.path)), prefix + str(i)
        try:
            # Private, as git writes under CHECKOUT_UMASK: a program that opens the
            # path meanwhile writes its bytes into this file, whose mode they keep.
            os.close(os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return c.path
        except OSError:
            continue                # git will say why it cannot write it either
        empty = blob_id(b"", c.new_oid)
        try:
            keep_inode(full, link, empty, c.path)
        except OSError:             # no hard links here, or a full disk: no net
            for made in (full, link, link + ".was"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(made)
            continue
        held.append((c.path, empty, link))
    return None


def give_back_new_paths(repo: Repo, held: list) -> None:
    """A refused checkout: remove take_new_paths' files from the paths they took
    (follow_replaced keeps what a program wrote into one, as a copy)."""
    for path, _, link in held:
        if still_at(repo, path, os.lstat(link)):
            os.unlink(os.path.join(repo.path, os.fsdecode(path)))


def changed_since_commit(repo: Repo, changes: List[Change], kept) -> Optional[bytes]:
    """The first path to replace or remove that is no longer as committed in the old
    tree (content, executable bit, or the file itself replaced), else None.  A
    missing file is fine: a peer's edit beats a delete, as in merges."""
    links = {path: link for path, _, link in kept}
    for c in changes:
        if c.kind == "A":
            continue
        full = os.path.join(repo.path, os.fsdecode(c.path))
        try:
            st = os.lstat(full)
            link = links.get(c.path)        # every file's (see paths_alone_will_do)
            same = (link is None or os.path.samestat(st, os.lstat(link))) and \
                holds_blob(full, st, c.old_mode, c.old_oid, read_from=link)
        except FileNotFoundError:
            continue
        except OSError:
            same = False
        if not same:
            return c.path
    return None


def displace_ignored(repo: Repo, changes) -> None:
    """Move aside ignored files that the checkout of changes would overwrite.

    An ignored file was never committed, so this copy is the only one; git's
    checkout counts it as expendable.  When a peer adds a tracked file at its path
    (or needs its path for a directory), ours goes to .git/gtfc/displaced/."""
    at_risk = set()
    for path in (c.path for c in changes if c.kind == "A"):
        parts = os.fsdecode(path).split("/")
        for depth in range(1, len(parts) + 1):
            rel = "/".join(parts[:depth])
            full = os.path.join(repo.path, rel)
            if depth < len(parts) and os.path.isdir(full) and not os.path.islink(full):
                continue
            if os.path.lexists(full):
                at_risk.add(rel)
            break
    if not at_risk:
        return
    listed = repo.git("ls-files", "-z", "-o", "-i", "--exclude-standard", "--",
                      *sorted(at_risk), env={"GIT_LITERAL_PATHSPECS": "1"}).stdout
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    for rel in map(os.fsdecode, filter(None, listed.split(b"\0"))):
        target = displaced_path(repo, rel, stamp)
        os.replace(os.path.join(repo.path, rel), target)
        warn(f"{repo.path}: a peer added {rel!r}, which is ignored here; your copy "
             f"is kept at {target}")


def replaced_folder(repo: Repo) -> str:
    """.git/gtfc/replaced/: a hard link to each file a checkout replaced, and its
    record (LINK.was: the committed blob's id, a newline, the path), while a
    program may still write into it."""
    return os.path.join(repo.state_dir, "replaced")


@contextlib.contextmanager
def keep_old_inodes(repo: Repo, changes):
    """Hard-link each file the checkout of changes will replace or remove, before
    it does: [(path, committed blob, link)]; follow_replaced decides, after, what
    becomes of each link.

    git checks that a file is as committed, then replaces it.  A program that
    writes into the file after that check (an open descriptor, an append, a write
    that truncated the file first) writes into the old inode, which the checkout
    unlinks: the link keeps it."""
    doomed = [(c.path, c.old_oid) for c in changes
              if c.old_mode in FILE_MODES and c.kind in ("M", "D", "T")]
    made = []
    if len(doomed) <= MAX_LISTED_PATHS:     # a big checkout: not worth doubling its I/O
        os.makedirs(replaced_folder(repo), exist_ok=True)
        prefix = os.path.join(replaced_folder(repo), f"{time.time_ns()}-")
        for i, (path, oid) in enumerate(doomed):
            with contextlib.suppress(OSError):      # gone already, or no hard links here
                keep_inode(os.path.join(repo.path, os.fsdecode(path)), prefix + str(i),
                           oid, path)
                made.append((path, oid, prefix + str(i)))
    try:
        yield made
    finally:
        follow_replaced(repo, just_replaced={link for _, _, link in made})


# A program may still write into a replaced file: follow it until the program
# closes it.  On Linux the kernel says so (a read lease is granted only on a file
# no one has open for writing); elsewhere, or on a file not ours, the clock does:
# a file written less than FOLLOW_SECONDS ago is followed.  The lease is held for
# a moment only, but an open for writing through another hard link in that moment
# breaks it, and the kernel tells the holder with SIGIO, which kills: gtfc has it
# send SIGURG instead, which nothing minds.
FOLLOW_SECONDS = 60
FOLLOW_TICK = 1.0                       # how often a watcher looks while it follows
F_SETLEASE = getattr(fcntl, "F_SETLEASE", None)


def being_written(path: str, st: os.stat_result) -> bool:
    """Has a program path's inode open for writing (or written it lately)?"""
    if F_SETLEASE is not None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
            fcntl.fcntl(fd, F_SETLEASE, fcntl.F_RDLCK)
            fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)
            return False
        except OSError as e:
            if e.errno == errno.EAGAIN:
                return True
        finally:
            os.close(fd)
    return time.time() - st.st_mtime < FOLLOW_SECONDS


def follow_replaced(repo: Repo, just_replaced=()) -> List[bytes]:
    """Let go of each kept inode (see keep_old_inodes) that no program writes any
    more: one still at its path was not replaced (the checkout was refused); one
    that holds other bytes than were committed was written during or after the
    checkout, and those bytes become a conflict copy beside the file.  Returns
    the copies it made; repo.following: how many inodes are still followed."""
    folder = replaced_folder(repo)
    try:
        names = set(os.listdir(folder))
    except FileNotFoundError:
        names = set()
    copies, repo.following = [], 0
    for name in sorted(n for n in names if not n.endswith(".was")):
        link = os.path.join(folder, name)
        try:
            st = os.lstat(link)
        except FileNotFoundError:
            names.discard(name)             # its record goes with the orphans below
            continue
        oid, path = replaced_record(link)
        if not path or not still_at(repo, path, st):
            if being_written(link, st):
                repo.following += 1
                if path and link in just_replaced:
                    warn(f"{repo.path}: {os.fsdecode(path)} is still open for writing by "
                         "a program, and a peer's version replaced it; what the program "
                         "writes is kept as a conflict copy when it closes the file")
                continue
            try:
                if path:
                    copies += rescue_written_bytes(repo, link, path, oid.decode())
                else:
                    set_aside_unrecorded(repo, link, st)
            except OSError as e:            # a full disk: the link keeps the bytes
                repo.following += 1
                warn(f"{repo.path}: could not keep what was written into the replaced "
                     f"{os.fsdecode(path)} ({e.strerror}); it stays in {link}, tried "
                     "again each round")
                continue
        names.discard(name + ".was")
        for gone in (link, link + ".was"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(gone)
    for orphan in (n for n in names if n.endswith(".was") and n[:-4] not in names):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, orphan))
    return copies


def keep_inode(full: str, link: str, oid: str, path: bytes) -> None:
    """Hard-link the file full as link in the replaced folder, with its record."""
    os.link(full, link, follow_symlinks=False)
    with open(link + ".was", "wb") as f:
        f.write(oid.encode() + b"\n" + path)


def replaced_record(link: str) -> Tuple[Optional[bytes], Optional[bytes]]:
    """A kept link's record: (committed blob id, path), or (None, None) where it has
    none (see set_aside_unrecorded)."""
    try:
        with open(link + ".was", "rb") as f:
            oid, path = f.read().split(b"\n", 1)
        return oid, path
    except (OSError, ValueError):
        return None, None


def kept_links(repo: Repo) -> List[str]:
    """The links in the replaced folder (not their records)."""
    folder = replaced_folder(repo)
    try:
        return [os.path.join(folder, name) for name in sorted(os.listdir(folder))
                if not name.endswith(".was")]
    except FileNotFoundError:
        return []


def kept_inodes(repo: Repo) -> set:
    """(st_dev, st_ino) of each file kept in the replaced folder (read under the
    lock: nothing else removes a link meanwhile)."""
    return {(st.st_dev, st.st_ino) for st in map(os.lstat, kept_links(repo))}


def followed_paths(repo: Repo) -> List[str]:
    """The paths whose replaced file a program still writes into (for status)."""
    return sorted(os.fsdecode(path) for path in (
        replaced_record(link)[1] for link in kept_links(repo)) if path)


def set_aside_unrecorded(repo: Repo, link: str, st: os.stat_result) -> None:
    """A kept inode without its record: gtfc stopped between the link and the record,
    or a power cut lost the record (it is not fsynced: that would cost every
    checkout a disk flush per file).  Its bytes are safe where the inode has another
    name (the file was not replaced) or where a commit holds them; else they go to
    .git/gtfc/displaced/, since the path they were written at is not known."""
    if st.st_nlink > 1 or repo.has_object(repo.out("hash-object", "--", link)):
        return
    target = displaced_path(repo, "replaced-" + os.path.basename(link))
    copy_privately(link, target)
    warn(f"{repo.path}: a file replaced before gtfc stopped (or the power was cut) "
         f"held bytes no commit has, and its path was lost with its record; they are "
         f"kept at {target}")


def still_at(repo: Repo, path: bytes, st: os.stat_result) -> bool:
    """Is the inode st the file at path (one a checkout did not replace)?"""
    try:
        return os.path.samestat(st, os.lstat(os.path.join(repo.path, os.fsdecode(path))))
    except OSError:                     # removed, or a folder there now
        return False


def rescue_written_bytes(repo: Repo, link: str, path: bytes, oid: str) -> List[bytes]:
    """The kept inode's bytes, if not what was committed, as a copy beside path
    (the copies made, to commit).  Where that is no folder in the repo now (a
    file, or a peer's symlink, on the way), in .git/gtfc/displaced/ instead."""
    now = file_blob_id(link, oid)
    if now == oid:
        return []
    rel = conflict_copy_name(os.fsdecode(path), repo.node, int(time.time()), now)
    beside = inside(repo, os.fsencode(rel))
    try:
        if beside:
            os.makedirs(os.path.dirname(beside), exist_ok=True)
            copy_privately(link, beside)
            warn(f"{repo.path}: {os.fsdecode(path)} was written while a peer's version "
                 f"replaced it; your bytes are kept as {rel}")
            return [os.fsencode(rel)]
    except (FileExistsError, NotADirectoryError):       # a file where a folder was
        pass
    target = displaced_path(repo, rel)
    copy_privately(link, target)
    warn(f"{repo.path}: {os.fsdecode(path)} was written while a peer's change "
         f"replaced it, and its folder is gone; your bytes are kept at {target}")
    return []


def copy_privately(src: str, dst: str) -> None:
    """shutil.copy2, but the bytes go into a file no one else can open: copy2 makes
    the copy under the umask and gives it src's mode only after writing (a 600
    file's bytes were readable by others meanwhile)."""
    import shutil                       # see "Imported where used"
    with open(src, "rb") as f, \
            open(dst, "wb", opener=lambda path, flags: os.open(path, flags, 0o600)) as out:
        os.fchmod(out.fileno(), 0o600)  # were it there already
        shutil.copyfileobj(f, out)
    shutil.copystat(src, dst)


# Self-heal: a damaged repo repaired from its peers ###########################
# A power cut on a disk that lies about fsync, or a failing disk, can leave an
# object empty, a ref holding nothing, a torn index.  git reads a torn index
# without checking it (only fsck does), and a commit from it would delete the files
# it lost on every host; a broken branch ref reads as "no commit yet".  So the
# first round of every process (a power cut's damage meets the first gtfc after
# the reboot) checks what every round relies on, and any git command that finds
# damage raises RepoDamaged.  integrate then sets the damaged parts aside, has
# every peer it reaches send its whole history again, and rebuilds the index from
# HEAD — the working tree, where any local change lives, is never touched: the
# next round commits it.  What cannot be repaired stops this repo's sync (nothing
# is sent from it) with one line, and status says so.

def damaged_path(repo: Repo) -> str:
    """.git/gtfc/damaged: why this repo could not be repaired; nothing is sent
    while it exists."""
    return os.path.join(repo.state_dir, "damaged")


def check_whole(repo: Repo) -> None:
    """Raise RepoDamaged if the index, the branch ref or HEAD's commit and top
    folder cannot be read — or, at the first round since the machine booted (or
    since a send met damage), any loose object or any commit's history."""
    thorough = last_checked_boot(repo) != boot_id()
    why = index_damage(repo) or head_damage(repo) or (thorough and objects_damage(repo))
    if why:
        raise RepoDamaged(f"{repo.path}: {why}")
    if thorough:
        checked_on_this_boot(repo)


def boot_id() -> str:
    """What differs after every boot: Linux's boot id, BSD's and macOS's boot time."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return run(["sysctl", "-n", "kern.boottime"], check=False).stdout.decode().strip()


def checked_boot_path(repo: Repo) -> str:
    return os.path.join(repo.state_dir, "checked-boot")


def last_checked_boot(repo: Repo) -> str:
    try:
        with open(checked_boot_path(repo)) as f:
            return f.read().strip()
    except OSError:
        return ""


def checked_on_this_boot(repo: Repo) -> None:
    repo.checked_whole = True
    with contextlib.suppress(OSError):  # a full disk: the next process checks again
        write_file_atomic(checked_boot_path(repo), boot_id() + "\n")


def suspect_damage(repo: Repo) -> None:
    """A git command met damage: the next round, in this process or another (a
    watcher), checks everything."""
    repo.checked_whole = False
    with contextlib.suppress(OSError):
        os.unlink(checked_boot_path(repo))


def objects_damage(repo: Repo) -> Optional[str]:
    bad = [oid for oid, path in loose_objects(repo) if not loose_object_whole(path, oid)]
    if bad:
        return f"{counted(len(bad), 'object')} cannot be read ({bad[0]})"
    fsck = repo.git("fsck", "--connectivity-only", "--no-dangling", "--no-progress",
                    check=False)
    if fsck.returncode:
        return f"its history is incomplete ({last_line(fsck.stderr or fsck.stdout)})"
    return None


def index_damage(repo: Repo) -> Optional[str]:
    """Why the index (and the shared index a split index leans on) cannot be
    trusted, if it cannot: its trailing checksum does not match."""
    import glob                         # see "Imported where used"
    import hashlib
    index = os.path.join(repo.git_dir, "index")
    if not os.path.exists(index):
        return "the index is missing" if repo.head_if_any() else None
    algo = repo.local_config().get("extensions.objectformat", "sha1")
    size = 32 if algo == "sha256" else 20
    for path in [index, *glob.glob(os.path.join(glob.escape(repo.git_dir), "sharedindex.*"))]:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:       # an old shared index, just expired
            continue
        trailer = data[-size:]
        if len(data) < 12 + size or data[:4] != b"DIRC" or trailer != bytes(size) and \
                hashlib.new(algo, data[:-size]).digest() != trailer:   # zeros: skipHash
            return "the index is damaged" + ("" if path == index else f" ({path})")
    return None


def head_damage(repo: Repo) -> Optional[str]:
    head, branch = repo.head_if_any(), current_branch(repo)
    if head is None:
        if branch and (os.path.exists(os.path.join(repo.git_dir, branch)) or
                       reflog(repo, branch)):
            return f"the branch ref {branch} is damaged"
        return None                     # a bootstrap that stopped before its first commit
    # Read from the files, not from trees kept (tree_entries): is it whole on disk now?
    tree = repo.tree_of(head)
    if tree and repo.tree_entries(tree, os.path.join(repo.git_dir, "objects")) is not None:
        return None                     # read here, without a git process: fresh and whole
    proc = repo.git("ls-tree", head, check=False)
    return f"HEAD cannot be read ({last_line(proc.stderr)})" if proc.returncode else None


def current_branch(repo: Repo) -> Optional[str]:
    """refs/heads/NAME that HEAD names (None if detached or unreadable)."""
    with contextlib.suppress(OSError, UnicodeError):
        with open(os.path.join(repo.git_dir, "HEAD"), encoding="utf-8") as f:
            text = f.read().strip()
        if text.startswith("ref: refs/heads/"):
            return text[len("ref: "):]
    return None


def reflog(repo: Repo, ref: str) -> List[str]:
    """The commits ref pointed at, newest first, from its reflog file."""
    try:
        with open(os.path.join(repo.git_dir, "logs", ref), "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    found = [line.split(b" ", 2)[1].decode() for line in reversed(lines) if line.count(b" ") > 2]
    return [oid for oid in found if OID_RE.fullmatch(oid) and oid.strip("0")]


def integrate_whole(repo: Repo, paths: Optional[set],
                    on_commit: Optional[Callable[[str], None]] = None) -> "Integration":
    """integrate_locked on a repo checked whole at this process's first round;
    damage found then or by a git command on the way is repaired, and the round
    run once more."""
    try:
        # The mark gone: another gtfc process met damage (see suspect_damage).
        if not (repo.checked_whole and os.path.exists(checked_boot_path(repo))):
            check_whole(repo)
            repo.checked_whole = True
        step = integrate_locked(repo, paths, on_commit)
    except RepoDamaged as e:
        heal(repo, str(e))
        step = integrate_locked(repo, None, on_commit)  # HEAD or the index moved: look at all
    with contextlib.suppress(FileNotFoundError):
        os.unlink(damaged_path(repo))
    return step


def heal(repo: Repo, why: str) -> None:
    """Repair repo from its peers, or raise RepoDamaged saying what to do."""
    warn(f"{why.replace(DAMAGE_HINT, '')}: repairing it from its peers")
    aside = os.path.join(repo.state_dir, "damaged-parts", time.strftime("%Y%m%d-%H%M%S"))
    done = set_aside_bad_objects(repo, aside) + set_aside_broken_refs(repo, aside)
    failures = {p.name: fetch_from_peer(repo, p, whole=True) for p in heal_peers(repo)}
    answered = [name for name, failure in failures.items() if not failure]
    if failures and not answered:       # what is missing may well come back later
        cannot_heal(repo, why, f"no peer answered: {next(iter(failures.values()))}; "
                    "gtfc tries again each round")
    if answered:
        done.append(f"fetched the whole history again from {', '.join(answered)}")
    done += repair_head(repo) + drop_incomplete_refs(repo)
    # The index may name what was lost, or be torn: made anew from HEAD, it holds
    # no file's state, and git looks at each file once more.
    os.makedirs(aside, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.replace(os.path.join(repo.git_dir, "index"), os.path.join(aside, "index"))
    repo.git("read-tree", "HEAD", check=False)
    done.append("rebuilt the index from HEAD (your files are as they were)")
    fsck = repo.git("fsck", "--connectivity-only", "--no-dangling", "--no-progress",
                    check=False)
    problem = fsck.returncode and last_line(fsck.stderr or fsck.stdout) or \
        index_damage(repo) or head_damage(repo)
    if problem:
        cannot_heal(repo, problem, "")
    checked_on_this_boot(repo)
    warn(f"{repo.path}: repaired: {'; '.join(done) or 'nothing was missing after all'}")


def cannot_heal(repo: Repo, problem: str, why_not: str) -> None:
    message = (f"{repo.path} is damaged and could not be repaired"
               f"{f' ({why_not})' if why_not else ''}: {problem} — nothing is sent from it; "
               "your files are untouched.  If this persists: move its .git aside and "
               "gtfc-join again")
    with contextlib.suppress(OSError):  # a full disk: status finds the damage itself
        write_file_atomic(damaged_path(repo), message + "\n")
    raise RepoDamaged(message)


def heal_peers(repo: Repo) -> List[Node]:
    """The peers, read from HEAD or, when HEAD cannot be read, from the newest
    commit that can: a peer's head or one HEAD pointed at before."""
    branch = current_branch(repo)
    for commit in ["HEAD", *repo.refs(HAS).values(), *repo.refs(INBOX).values(),
                   *(reflog(repo, branch) if branch else [])]:
        with contextlib.suppress(GtfcError):
            return [n for name, n in sorted(read_nodes(repo, commit).items())
                    if name != repo.node]
    return []


def set_aside_bad_objects(repo: Repo, aside: str) -> List[str]:
    """Move loose objects whose content does not hash to their name (empty, torn)
    out of the way, so that a fetched copy takes their place."""
    bad = [(oid, path) for oid, path in loose_objects(repo) if not loose_object_whole(path, oid)]
    for oid, path in bad:
        os.makedirs(os.path.join(aside, "objects"), exist_ok=True)
        os.replace(path, os.path.join(aside, "objects", oid))
    return [f"set aside {counted(len(bad), 'damaged object')}"] if bad else []


def loose_objects(repo: Repo) -> Iterable[Tuple[str, str]]:
    """(oid, path) of every loose object: a few thousand at most (git gc packs them)."""
    objects = os.path.join(repo.git_dir, "objects")
    for folder in sorted(os.listdir(objects)):
        if len(folder) == 2:
            for name in sorted(os.listdir(os.path.join(objects, folder))):
                if OID_RE.fullmatch(folder + name):
                    yield folder + name, os.path.join(objects, folder, name)


def loose_object_whole(path: str, oid: str) -> bool:
    import hashlib                      # see "Imported where used"
    digest = hashlib.sha256() if len(oid) == 64 else hashlib.sha1()
    inflate = zlib.decompressobj()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(inflate.decompress(block))
        digest.update(inflate.flush())
    except (OSError, zlib.error):
        return False
    return inflate.eof and digest.hexdigest() == oid


def set_aside_broken_refs(repo: Repo, aside: str) -> List[str]:
    """Move ref files that hold no object id (a write a crash cut short) aside."""
    broken = []
    for folder, _, names in os.walk(os.path.join(repo.git_dir, "refs")):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                text = f.read().strip()
            if not (OID_RE.fullmatch(text.decode(errors="replace")) or text.startswith(b"ref: ")):
                ref = os.path.relpath(path, repo.git_dir)
                os.makedirs(os.path.join(aside, os.path.dirname(ref)), exist_ok=True)
                os.replace(path, os.path.join(aside, ref))
                broken.append(ref)
    return [f"set aside broken refs {', '.join(broken)}"] if broken else []


def whole_commit(repo: Repo, commit: str) -> bool:
    """Can commit and every file and folder of its tree be read?"""
    return repo.git("rev-list", "--objects", "--quiet", "--no-walk", commit,
                    check=False).returncode == 0


def repair_head(repo: Repo) -> List[str]:
    """A HEAD that even the peers could not give back points at the newest whole
    commit it pointed at before: the working tree still holds what came after,
    and the next round commits it."""
    branch = current_branch(repo)
    head = repo.head_if_any()
    if not branch or head and whole_commit(repo, head):
        return []
    for commit in reflog(repo, branch):
        if whole_commit(repo, commit):
            repo.git("update-ref", "-m", "gtfc: repaired", branch, commit)
            return [f"moved {branch} back to {short(commit)}, the newest whole commit it held"]
    return []


def drop_incomplete_refs(repo: Repo) -> List[str]:
    """Inbox and has refs whose commit is not whole are dropped: a peer's next push
    or fetch sets them again."""
    dropped = [prefix + name for prefix in (INBOX, HAS)
               for name, oid in repo.refs(prefix).items() if not whole_commit(repo, oid)]
    for ref in dropped:
        repo.git("update-ref", "-d", ref, check=False)
    return [f"dropped {', '.join(dropped)}"] if dropped else []


# History horizon: bounded history, forget and purge ##########################
# A host keeps history back to its horizon: a commit whose ancestors it drops
# (git's .git/shallow names it; expired reflogs and git's pruning do the rest).
# What moves it are synced files in .gtfc/history/: `keep` (how long history is
# kept), forget-* (drop what is older than a date) and purge-* (drop history up to
# a commit that deleted a path).  Each host picks its own horizon from them and
# from what it knows: no host waits for the others to agree on a commit.  That is
# safe because a merge reads only the commits since its sides' histories meet in
# one commit, never history behind it (see read_history), so a host that dropped
# history merges exactly as one that kept it, as long as its horizon is
#   * a cut of all it may ever merge (then that commit is never behind it): every commit that its head and the peers'
#     heads reach is an ancestor or a descendant of the horizon (our own old
#     heads, that we sent to peers, are dropped from refs/gtfc/has/ there), and
#   * in every member's own head as last seen (its push to us, or our fetch from
#     it): a member's later commits descend from that head, so they stay on the
#     near side of the cut.  A member not heard from since holds the horizon back.
# Entry: keep_history, from housekeep (the watcher when idle, gtfc-pull) and from
# gtfc forget and purge.  In: .gtfc/history/ in HEAD, HEAD and the peers' refs.
# Out: .git/shallow naming the new horizon, reflogs without what it dropped, and
# the objects nothing reaches any more pruned.

HISTORY_DIR = ".gtfc/history"
DURATION_RE = re.compile(r"^\s*(\d+)\s*(d|days?|w|weeks?|h|hours?|months?|y|years?)\s*$", re.I)
DURATION_UNITS = {"d": 86400, "w": 7 * 86400, "h": 3600, "m": 30 * 86400, "y": 365 * 86400}
# Objects that nothing reaches are pruned only this old: a push or fetch writes
# its objects a moment before the ref that reaches them (git's own gc waits two
# weeks; gtfc's transfers take seconds).  A purge removes its blobs at once.
# gtfc.pruneAfter (local git config, git's date syntax) overrides it.
PRUNE_AFTER = "1.hour.ago"


class HistoryWish(NamedTuple):
    """What .gtfc/history asks of every host: no history older than the time
    before (None: keep it), and none up to each of purges ({the commit that
    deleted a path: that path})."""
    before: Optional[int]
    purges: Dict[str, str]


def parse_duration(text: str) -> int:
    """ "180 days", "26w", "12 hours", "1 year" -> seconds (a month is 30 days, a
    year 365); ValueError for anything else."""
    found = DURATION_RE.match(text)
    if not found or int(found[1]) == 0:
        raise ValueError(f"{text.strip()!r} is not a duration: a number of hours, days, "
                         "weeks, months or years, e.g. '180 days' (or 'all')")
    return int(found[1]) * DURATION_UNITS[found[2][0].lower()]


def history_wish(repo: Repo, commit: str = "HEAD", now: Optional[float] = None) -> HistoryWish:
    """The wish .gtfc/history states in commit.  A file gtfc cannot read is passed
    over with a warning: it must not drop history nobody asked to drop."""
    files = folder_blobs(repo, commit, HISTORY_DIR)
    befores, purges = [], {}
    texts = blob_texts(repo, list(files.values()))
    for name, text in zip(files, (t.decode(errors="replace").strip() for t in texts)):
        try:
            if name == "keep":
                befores.append(int((now or time.time()) - parse_duration(text)))
            elif name.startswith("forget-"):
                word, when = (text.split() + ["", ""])[:2]
                if word != "before" or not when.isdigit():
                    raise ValueError(f"it says {text[:40]!r}, not 'before SECONDS'")
                befores.append(int(when))
            elif name.startswith("purge-") and OID_RE.fullmatch(name[len("purge-"):]):
                purges[name[len("purge-"):]] = text
        except ValueError as e:
            warn(f"{repo.path}: {HISTORY_DIR}/{name} drops no history: {e} — see "
                 "gtfc forget --help")
    return HistoryWish(max(befores) if befores else None, purges)


def current_horizon(repo: Repo) -> Optional[str]:
    """The commit history starts at here (None: all history is here)."""
    with contextlib.suppress(FileNotFoundError):
        with open(os.path.join(repo.git_dir, "shallow")) as f:
            found = f.read().split()
        return found[-1] if found else None
    return None


class Horizon(NamedTuple):
    """find_horizon's answer: the commit to move the horizon to (None: it stays),
    and the members that hold it back (it would move further without them)."""
    commit: Optional[str]
    held_by: List[str]


def find_horizon(repo: Repo, wish: HistoryWish, members: Optional[List[str]] = None
                 ) -> Horizon:
    """Where wish moves the horizon (see the section's head), and who holds it back.
    members (default: from the membership records) are the nodes whose heads count."""
    heads = repo.refs(INBOX)
    if members is None:
        members = member_heads_count(repo, heads)
    unheard = sorted(m for m in members if m not in heads)
    head = repo.head()
    # (HAS, what we sent peers, is no tip: see cut_history.)
    picked, ideal = pick_cuts(repo, head, {head, *heads.values()}, wish)
    picked = None if unheard else picked
    if ideal in (None, picked):
        return Horizon(picked, [])
    return Horizon(picked, unheard or [m for m in members if not is_ancestor(
        repo, ideal, heads[m])])


def member_heads_count(repo: Repo, heads: Dict[str, str]) -> List[str]:
    """The nodes whose heads the horizon waits for: the members, and a node removed
    here for as long as a member's head as last seen still lists it — until that
    member has the removal, it may merge what the removed node sent it (a peer
    drops a former member's refs only once it knows)."""
    members = {p.name for p in peers(repo)}
    for name in sorted(members):
        if name in heads:
            members |= set(read_nodes(repo, heads[name]))
    return sorted(members - {repo.node})


def is_ancestor(repo: Repo, old: str, new: str) -> bool:
    return repo.git("merge-base", "--is-ancestor", old, new, check=False).returncode == 0


class CutSearch:
    """pick_cuts' search among the commits that some tips reach."""

    def __init__(self, tips: set):
        self.waiting = set(tips)            # tips and parents not listed yet
        self.by_purge: Optional[str] = None
        self.picked: Optional[str] = None
        self.done = False

    def look(self, commit: str, parents: List[str], when: int, wish: HistoryWish,
             passed: set) -> None:
        """commit, next in topological order; passed: the purges' deletes listed."""
        self.waiting.discard(commit)
        if not self.waiting and not self.done:          # a cut
            holds_deletes = not passed              # each delete is this commit or older
            if wish.before is not None and when <= wish.before:
                self.picked = commit if holds_deletes or not self.by_purge else self.by_purge
                self.done = True
            elif wish.purges and holds_deletes:
                self.by_purge = commit
        self.waiting.update(parents)


def pick_cuts(repo: Repo, head: str, tips: set, wish: HistoryWish
              ) -> Tuple[Optional[str], Optional[str]]:
    """The cut wish picks among what tips reach, and the one it would pick among
    what head alone reaches; each None where history starts already (the horizon,
    or the first commit).  A cut wish picks: the newest made before wish.before,
    or, if newer, the oldest that holds every purge's delete.  In git's
    topological order (children first) a commit is a cut when every tip and every
    parent named so far is listed: then all listed before it descend from it, and
    all after are its ancestors.  One walk of the history kept."""
    if wish.before is None and not wish.purges:
        return None, None
    listing = repo.out("rev-list", "--topo-order", "--no-commit-header",
                       "--format=%H %P|%ct", *sorted(tips)).splitlines()
    searches = (CutSearch(tips), CutSearch({head}))
    mine, passed = {head}, set()            # what head reaches; deletes listed
    parents_of: Dict[str, List[str]] = {}
    for line in listing:
        ids, when = line.split("|")
        commit, *parents = ids.split()
        parents_of[commit] = parents
        for search in searches[:2 if commit in mine else 1]:
            search.look(commit, parents, int(when), wish, passed)
        if commit in mine:
            mine.update(parents)
        if commit in wish.purges:
            passed.add(commit)
        if all(search.done for search in searches):
            break
    found = [search.picked or search.by_purge for search in searches]
    return tuple(c if c and parents_of[c] else None for c in found)


def keep_history(repo: Repo, members: Optional[List[str]] = None) -> Horizon:
    """Move the horizon as far as .gtfc/history asks and it is safe to (see the
    section's head); then prune what nothing reaches.  Never backwards: a cut is
    made only below a descendant of the horizon there is."""
    prune_when_due(repo)
    wish = history_wish(repo)
    if wish.before is None and not wish.purges or keeps_all_history(repo):
        return Horizon(None, [])
    # The walk costs ~1 s per 100,000 commits kept: not again while nothing it
    # reads changed (a rolling --keep moves its date: an hour at a time, here).
    key = (repo.head(), sorted(repo.refs(INBOX).items()), wish.purges,
           wish.before // 3600 if wish.before else None, members)
    if repo.horizon_looked[0] == key:
        return repo.horizon_looked[1]
    found = find_horizon(repo, wish, members)
    # Not walked again until a head moves (or an hour passes), whether it cut or not.
    repo.horizon_looked = (key, Horizon(None, found.held_by))
    if found.commit:
        purged = purged_blobs(repo, wish, found.commit)
        # Under the repo lock: git's reflog expiry locks HEAD, which a merge moves.
        with repo.lock(timeout=LOCK_TIMEOUT):
            moved = cut_history(repo, found.commit)
        if moved:
            LOG(f"{os.path.basename(repo.path)}: history now starts at "
                f"{short(found.commit)} ({commit_date(repo, found.commit)})")
            prune_history(repo, purged)
            with open(prune_due_path(repo), "w"):      # for what was too young now
                pass
            os.utime(prune_due_path(repo), (time.time() + 3660,) * 2)
    return found


def prune_due_path(repo: Repo) -> str:
    """.git/gtfc/prune-due: its time is when to prune again what a cut left (see
    PRUNE_AFTER)."""
    return os.path.join(repo.state_dir, "prune-due")


def prune_when_due(repo: Repo) -> None:
    with contextlib.suppress(FileNotFoundError):
        if os.stat(prune_due_path(repo)).st_mtime <= time.time():
            os.unlink(prune_due_path(repo))
            prune_history(repo)


def keeps_all_history(repo: Repo) -> bool:
    """gtfc.keepAllHistory (local git config): this host drops nothing, whatever
    .gtfc/history says — for a host that keeps the record (any member can write
    .gtfc/history)."""
    return repo.setting("keepAllHistory").lower() in ("true", "yes", "on", "1")


def commit_date(repo: Repo, commit: str) -> str:
    return repo.out("show", "-s", "--format=%ci", commit)


def cut_history(repo: Repo, commit: str) -> bool:
    """Make commit the first one this host keeps: written to .git/shallow under
    git's own lock (shallow.lock), and only if it descends from where history
    starts now (two gtfc processes may cut at once).  Reflog entries of commits
    it drops go too, or they would keep them.  False: another git held the lock."""
    now = current_horizon(repo)
    if now == commit or now and not is_ancestor(repo, now, commit):
        return False
    with contextlib.ExitStack() as sending:
        # No push may record, after this, a head it read before the cut.
        try:
            for name in sorted(repo.refs(HAS)):
                sending.enter_context(repo.lock(timeout=30, name=f"send-{name}.lock"))
        except GtfcError:
            return False                    # a long push: the next round cuts
        # What we once sent a peer (HAS) may be behind the cut or beside it (a
        # merge we moved on from): the peer's own head (INBOX) says it has more.
        # Dropped first, so that a power cut never leaves one behind the cut.
        for name, oid in repo.refs(HAS).items():
            if not is_ancestor(repo, commit, oid):
                repo.git("update-ref", "-d", HAS + name, oid, check=False)
        # A branch or tag of the user's that the cut would leave pointing into
        # history behind it (its walks would meet pruned commits) holds it back.
        behind = repo.out("for-each-ref", "--format=%(refname)", f"--no-contains={commit}",
                          "refs/heads/", "refs/tags/").split()
        if behind:
            warn(f"{repo.path}: history is kept from {short(commit)} back while "
                 f"{', '.join(behind)} point{'s' if len(behind) == 1 else ''} into it — "
                 "delete or move them to let it go")
            return False
        return write_horizon(repo, commit)


def write_horizon(repo: Repo, commit: str) -> bool:
    path = os.path.join(repo.git_dir, "shallow")
    lock = path + ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            if not repo.remove_lock_if_stale(lock):
                return False
    else:
        return False
    try:
        now = current_horizon(repo)
        if now == commit or now and not is_ancestor(repo, now, commit):
            return False
        os.write(fd, f"{commit}\n".encode())
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(lock, path)
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
    # A commit-graph names the dropped parents (git ignores it here, fsck does not).
    import shutil                       # see "Imported where used"
    graph = os.path.join(repo.git_dir, "objects", "info", "commit-graph")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(graph)
    shutil.rmtree(graph + "s", ignore_errors=True)
    repo.git("reflog", "expire", "--expire-unreachable=now", "--all")
    return True


def purged_blobs(repo: Repo, wish: HistoryWish, cut: str) -> set:
    """Every version (blob) that the paths of the purges a cut at commit fulfils
    had, and their conflict copies had, in the history the cut drops."""
    paths = [path for delete, path in wish.purges.items() if is_ancestor(repo, delete, cut)]
    if not paths:
        return set()
    specs = [spec for path in paths for spec in copy_pathspecs(path)]
    raw = repo.out("log", "-m", "--raw", "--no-abbrev", "--format=", cut, "--", *specs)
    return {oid for line in raw.splitlines() if line.startswith(":")
            for oid in line.split()[2:4] if set(oid) != {"0"}} | lingering_versions(repo, paths)


def lingering_versions(repo: Repo, paths: List[str]) -> set:
    """The blobs paths (and their conflict copies) had in commits that nothing
    reaches but git has not pruned yet (dropped by an earlier cut, younger than
    gtfc.pruneAfter): a purge removes them too."""
    listing = repo.git("fsck", "--unreachable", "--no-reflogs", "--no-progress",
                       check=False).stdout.decode(errors="replace")
    commits = [line.split()[2] for line in listing.splitlines()
               if line.startswith("unreachable commit ")]
    folders = sorted({os.path.dirname(path) for path in paths})
    query = "".join(f"{commit}:{folder}\n" for commit in commits for folder in folders)
    found = repo.git("cat-file", "--batch-check", input=query.encode()).stdout.decode()
    trees = {line.split()[0] for line in found.splitlines() if line.split()[1:2] == ["tree"]}
    blobs = set()
    for tree in trees:
        for entry in filter(None, repo.git("ls-tree", "-z", tree).stdout.split(b"\0")):
            meta, name = entry.decode(errors="replace").split("\t", 1)
            _, kind, oid = meta.split()
            if any(name == os.path.basename(p) or names_a_copy_of(name, p) for p in paths):
                blobs |= {oid} if kind == "blob" else {
                    line.split()[2] for line in repo.out("ls-tree", "-r", oid).splitlines()}
    return blobs


def prune_history(repo: Repo, purged: set = frozenset()) -> None:
    """Drop the objects nothing reaches: packed ones at once, loose ones once
    PRUNE_AFTER old (see there); purged blobs nothing reaches go at once."""
    after = repo.setting("pruneAfter") or PRUNE_AFTER
    repo.git("repack", "-d", "-A", "-q", f"--unpack-unreachable={after}")
    repo.git("prune", f"--expire={after}")
    if not purged:
        return
    # Nothing may start to rely on one of them meanwhile: no commit or merge (the
    # repo lock), no push or fetch (objects_lock).
    with repo.lock(timeout=LOCK_TIMEOUT), objects_lock(repo, exclusive=True):
        reachable = repo.out("rev-list", "--objects", "--all", "--reflog", "--indexed-objects")
        for oid in purged - {line.split()[0] for line in reachable.splitlines()}:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(repo.git_dir, "objects", oid[:2], oid[2:]))


# Operating: status, history, restore #########################################

def ago(seconds: Optional[float]) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def watcher_pid(repo: Repo) -> Optional[int]:
    """The pid of the gtfc-watch running on repo, or None (it holds watch.pid locked)."""
    try:
        with open(os.path.join(repo.state_dir, "watch.pid")) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return None
            except BlockingIOError:
                text = f.read().strip()
                return int(text) if text.isdigit() else -1
    except FileNotFoundError:
        return None


def record_age(repo: Repo, peer: str, what: str) -> Optional[float]:
    try:
        return max(0.0, time.time() - os.stat(peer_record(repo, peer, what)).st_mtime)
    except FileNotFoundError:
        return None


def peer_status(repo: Repo, peer: Node, head: str) -> dict:
    """One short round trip (ls-remote over the shared connection) and local facts."""
    state = {"name": peer.name, "address": f"{peer.user}@{peer.address}:{peer.port}",
             "reachable": False, "error": None, "head": None, "they_lack": None,
             "we_lack": None, "last_push_s": record_age(repo, peer.name, "pushed"),
             "last_pull_s": record_age(repo, peer.name, "pulled"), "retrying": None}
    try:
        with open(peer_record(repo, peer.name, "failing")) as f:
            why, when = (f.read().splitlines() + ["", ""])[:2]
        state["retrying"] = {"reason": why, "next_try_in_s":
                             max(0, float(when or 0) - time.time())}
    except (FileNotFoundError, ValueError):
        pass
    try:
        failure = open_connection(repo, peer)
        if not failure:
            proc = peer_git(repo, peer, "ls-remote", peer_url(peer), "HEAD")
            failure = explain_ssh_failure(peer.name, proc.stderr) if proc.returncode else None
    except GtfcError as e:
        failure = str(e)
    if failure:
        state["error"] = failure
        return state
    state["reachable"] = True
    state["head"] = proc.stdout.decode().split()[0] if proc.stdout.split() else None
    theirs = state["head"]
    if theirs == head:
        state["they_lack"] = state["we_lack"] = 0
    elif theirs and repo.git("cat-file", "-e", f"{theirs}^{{commit}}",
                             check=False).returncode == 0:
        counts = repo.out("rev-list", "--left-right", "--count", f"{head}...{theirs}")
        state["they_lack"], state["we_lack"] = map(int, counts.split())
    else:
        state["they_lack"] = int(repo.out("rev-list", "--count", head, "--not",
                                          *known_heads(repo, peer.name)) or 0)
    return state


def repo_status(repo: Repo) -> dict:
    with contextlib.suppress(FileNotFoundError), open(damaged_path(repo)) as f:
        raise RepoDamaged(f.read().strip())
    try:
        check_whole(repo)
    except RepoDamaged as e:
        raise RepoDamaged(f"{e}{DAMAGE_HINT}") from None
    for name, default in (("pullInterval", PULL_INTERVAL), ("retryMax", RETRY_MAX)):
        repo_setting(repo, name, default)       # a typo there stops the watcher's start
    head = repo.head()
    members = peers(repo)
    from concurrent.futures import ThreadPoolExecutor   # see "Imported where used"
    with ThreadPoolExecutor(max_workers=max(1, len(members))) as pool:
        peer_states = list(pool.map(lambda p: peer_status(repo, p, head), members))
    limit = max_file_size(repo)
    changed = worktree_changes(repo, look_only=True)
    too_big = oversized(repo, changed, limit)
    held = [{"path": os.fsdecode(path), "bytes": size} for path, size in too_big]
    listed = repo.git("ls-files", "-z").stdout.split(b"\0")
    conflicts = sorted(os.fsdecode(p) for p in listed if COPY_MARK.encode() in p and
                       not is_gtfc_own(p))
    try:
        with open(os.path.join(repo.state_dir, "mass-delete")) as f:
            deleted, total = map(int, f.read().split())
        refused = {"deleted": deleted, "of": total}
    except (FileNotFoundError, ValueError):
        refused = None
    try:
        with open(stuck_path(repo)) as f:
            stuck = f.read().strip()
    except FileNotFoundError:
        stuck = None
    try:
        with open(unapplied_path(repo)) as f:
            unapplied = dict(line.split(": ", 1) for line in f.read().splitlines()
                             if ": " in line)
    except FileNotFoundError:
        unapplied = {}
    disk = os.statvfs(repo.path)
    status = {"disk_free": disk.f_bavail * disk.f_frsize, "history_bytes": history_bytes(repo),
              "history": history_facts(repo),
              "read_only": bool(disk.f_flag & os.ST_RDONLY),
              "merge_rules_differ": other_merge_rules(repo, head), "repo": repo.path,
              "node": repo.node, "head": head, "metadata": metadata_kept(repo),
              "owners_not_applied": {p: w for p, w in unapplied.items() if p != "*"},
              "not_root": "*" in unapplied,
              "watcher_pid": watcher_pid(repo), "peers": peer_states,
              "cannot_apply": stuck, "mass_delete_refused": refused,
              "uncommitted": sorted(os.fsdecode(p) for p in set(changed) -
                                    {path for path, _ in too_big}),
              "held_back": held, "max_file_size": limit, "conflict_copies": conflicts,
              "invalid_records": invalid_nodes(repo), "followed": followed_paths(repo)}
    status["attention"] = attention(status)
    return status


def history_bytes(repo: Repo) -> int:
    """What the history takes on disk: .git/objects (packs, and the few thousand loose
    objects at most that git gc leaves)."""
    total = 0
    for folder, _, names in os.walk(os.path.join(repo.git_dir, "objects")):
        for name in names:
            with contextlib.suppress(FileNotFoundError):     # packed away meanwhile
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def history_facts(repo: Repo) -> dict:
    """Where history starts here, what .gtfc/history asks, and who holds it back."""
    start = current_horizon(repo)
    wish = history_wish(repo)
    found = find_horizon(repo, wish) if wish.before or wish.purges else Horizon(None, [])
    # A purge is done here once its delete is where history starts, or behind it.
    pending = [path for delete, path in sorted(wish.purges.items())
               if delete != start and is_ancestor(repo, delete, "HEAD")]
    return {"starts": start, "starts_time": int(repo.out("show", "-s", "--format=%ct", start))
            if start else None, "forget_before": wish.before, "held_by": found.held_by,
            "purges_pending": pending, "keep_all": keeps_all_history(repo)}


def status_or_error(repo: Repo) -> dict:
    """One repo's trouble (a bad setting, say) must not hide the others' status."""
    try:
        return repo_status(repo)
    except GtfcError as e:
        return {"repo": repo.path, "error": str(e), "attention": [str(e)],
                "watcher_pid": watcher_pid(repo)}


def attention(status: dict) -> List[str]:
    """What an admin should look at: the reason for status's exit code 1."""
    if status.get("missing"):
        return ["the folder is missing (unmounted or moved?)"]
    needs = [f"{p['name']} unreachable" for p in status["peers"] if not p["reachable"]]
    if not status["watcher_pid"]:     # with a watcher running, a difference is in flight
        needs += [f"{p['name']} out of sync (no gtfc-watch here: run gtfc-pull)"
                  for p in status["peers"] if p["reachable"] and (p["they_lack"] or p["we_lack"]
                                                                  or p["we_lack"] is None)]
    if status["cannot_apply"]:
        needs.append(f"peers' changes cannot be applied here: {status['cannot_apply']}")
    if status["mass_delete_refused"]:
        needs.append("a mass delete was refused (see gtfc-push's message or the "
                     "watcher's log)")
    if status["conflict_copies"]:
        needs.append(f"{counted(len(status['conflict_copies']), 'conflict copy')} "
                     "to look at")
    if status["held_back"]:
        needs.append(f"{counted(len(status['held_back']), 'file')} over "
                     "gtfc.maxFileSize, not synced")
    if status.get("read_only"):
        needs.append("the file system holding the folder is read-only (remounted after a "
                     "disk error? see dmesg): nothing is committed or received here")
    elif status.get("disk_free", DISK_LOW) < DISK_LOW:
        needs.append(f"the disk holding the folder is full ({size_text(status['disk_free'])} "
                     "free): nothing is committed or received here — free some space, and "
                     "sync resumes by itself")
    if status.get("owners_not_applied"):
        needs.append(f"{counted(len(status['owners_not_applied']), 'path')} without the "
                     "owner its peers gave it (kept private; create the user or group)")
    for name, rule in sorted(status["merge_rules_differ"].items()):
        needs.append(f"{name} runs merge rule {rule}, this node {MERGE_RULE}: merges are held "
                     "back until every host runs the same gtfc (upgrade it)")
    held = status["history"]["held_by"]
    for path in status["history"]["purges_pending"]:
        needs.append(f"the purge of {path} is not finished on this host" + (
            ": gtfc.keepAllHistory is set here" if status["history"].get("keep_all") else
            f": waiting for {', '.join(held)} (away? it finishes when they are back, or "
            "removed)" if held else ": waiting for every member's head to hold the "
            "delete (gtfc-pull)"))
    for name, why in sorted(status["invalid_records"].items()):
        needs.append(f"membership record {NODES_DIR}/{name} is ignored ({why}): that node "
                     f"gets and gives no changes — fix it, or gtfc restore {NODES_DIR}/{name}")
    return needs


def stamp_text(when: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(when))


def counted(n: int, thing: str) -> str:
    """1 file, 2 files, 2 conflict copies."""
    if n == 1:
        return f"1 {thing}"
    return f"{n} {thing[:-1] + 'ies' if thing.endswith('y') else thing + 's'}"


def print_status(status: dict) -> None:
    if status.get("missing"):
        info(f"{status['repo']}: MISSING — the folder is not there (unmounted or moved?)")
        return
    if status.get("error"):
        info(f"{status['repo']}: ERROR — {status['error']}")
        return
    pid = status["watcher_pid"]
    info(f"{status['repo']}: node {status['node']} at {short(status['head'])}, " +
         (f"gtfc-watch running (pid {pid})" if pid else "no gtfc-watch running") +
         f"; history {size_text(status['history_bytes'])}")
    history = status["history"]
    if history["starts"]:
        info(f"  history starts {stamp_text(history['starts_time'])} at "
             f"{short(history['starts'])}: older history was forgotten ({HISTORY_DIR})")
    if history["held_by"]:
        info(f"  history is kept longer than {HISTORY_DIR} asks, until "
             f"{', '.join(history['held_by'])} {'is' if len(history['held_by']) == 1 else 'are'}"
             " heard from again (or removed: gtfc remove NODE)")
    for p in status["peers"]:
        if p["reachable"]:
            if p["they_lack"] == 0 and p["we_lack"] == 0:
                sync = "in sync"
            elif p["we_lack"] is None:
                sync = f"lacks {p['they_lack']} of our commits; has commits we have not fetched"
            else:
                sync = f"lacks {p['they_lack']} of our commits, we lack {p['we_lack']} of its"
        else:
            sync = p["error"]
        line = (f"  {p['name']:<12} {'ok' if p['reachable'] else 'UNREACHABLE':<11} "
                f"{sync}; pushed {ago(p['last_push_s'])}, pulled {ago(p['last_pull_s'])}")
        if p["retrying"] and pid and not p["reachable"]:
            line += f"; watcher retries in {p['retrying']['next_try_in_s']:.0f} s"
        info(line)
    if status["uncommitted"]:
        names = status["uncommitted"]
        info(f"  {counted(len(names), 'local change')} not committed yet: " +
             ", ".join(names[:5]) + (", …" if len(names) > 5 else ""))
    for h in status["held_back"]:
        info(f"  held back (over {size_text(status['max_file_size'])}): "
             f"{h['path']} ({size_text(h['bytes'])})")
    for name in status["conflict_copies"]:
        info(f"  conflict copy: {name}")
    for path in status["followed"]:
        info(f"  written by a program while a peer's version replaced it: {path} (what it "
             "writes becomes a conflict copy when it closes the file)")
    for path, why in sorted(status["owners_not_applied"].items()):
        info(f"  owner not set: {path}: {why}")
    if status["not_root"]:
        info(f"  note: {NOT_ROOT}")
    if not status["metadata"]:
        info(f"  note: modes and owners are not synced ({META_SETTING} says off)")
    if status["attention"]:
        info("  needs attention: " + "; ".join(status["attention"]))


def repo_of_path(path: str) -> Tuple[Repo, str]:
    """The registered repo holding path (which may no longer exist) and path in it."""
    full = os.path.abspath(os.path.expanduser(path))
    full = os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full))
    for root in registered_repos():
        if full == root or full.startswith(root.rstrip("/") + "/"):
            rel = os.path.relpath(full, root)
            return Repo(root), ("" if rel == "." else rel)
    raise GtfcError(f"{path} is not inside a gtfc repo of yours (see {registry_path()})")


def history(repo: Repo, rel: str, number: int, *log_args: str):
    """[(time, commit, node, A/M/D/T, path)] of the last number commits touching rel,
    its conflict copies or its metadata records (META_DIR's paths, as git has them).
    --full-history: git's default simplification would hide an edit that lost a
    collision."""
    paths = copy_pathspecs(rel) + [
        ":(literal)" + os.fsdecode(meta_path(os.fsencode(rel.rstrip("/")), False))] \
        if rel else ["."]
    start = current_horizon(repo)       # its diff is unknown: it would list every file
    out = repo.git("log", *log_args, "--full-history", "-z", f"-n{number}",
                   "--name-status", "--no-renames", "--format=%x01%h %at %an",
                   *(["HEAD", "^" + start] if start else []), "--",
                   *paths).stdout.decode(errors="replace")
    entries = []
    for record in filter(None, out.split("\x01")):
        header, _, changes = record.partition("\0")
        commit, when, node = header.split(" ", 2)
        fields = [f for f in changes.lstrip("\n").split("\0") if f]
        entries += [(int(when), commit, node, kind.strip(), name)
                    for kind, name in zip(fields[0::2], fields[1::2])]
    return entries


def version_before(repo: Repo, rel: str, at: Optional[str]) -> str:
    """The commit whose version of rel to bring back: --at COMMIT, --at WHEN (git's
    date syntax: "2 hours ago", "2026-11-24 10:00"), or, for a deleted path, the
    last commit that still had it."""
    if at:
        commit = repo.out("rev-parse", "--verify", "-q", f"{at}^{{commit}}", check=False)
        if not commit:
            check_date(repo, at)
            commit = repo.out("rev-list", "-1", f"--before={at}", "HEAD", check=False)
        if not commit:
            raise GtfcError(f"no version as old as {at!r} (and no such commit) — see "
                            f"gtfc log {rel}" + forgotten_note(repo))
        return commit
    if repo.git("cat-file", "-e", f"HEAD:{rel}", check=False).returncode == 0:
        raise GtfcError(f"{rel} exists — say which version to bring back: --at '2 hours "
                        f"ago' or --at COMMIT (see gtfc log {rel})")
    for commit in repo.out("--literal-pathspecs", "rev-list", "-n100", "HEAD", "--",
                           rel).split():
        for parent in repo.out("rev-list", "--no-walk", "--parents", commit).split()[1:]:
            if repo.git("cat-file", "-e", f"{parent}:{rel}", check=False).returncode == 0:
                return parent
    raise GtfcError(f"{rel} is not in this repo's history — check the name with gtfc log"
                    + forgotten_note(repo))


def forgotten_note(repo: Repo) -> str:
    start = current_horizon(repo)
    return f" (history here starts {commit_date(repo, start)[:16]})" if start else ""


def check_date(repo: Repo, text: str, option: str = "--at") -> int:
    """The time text names in git's date syntax.  git reads a date it cannot parse
    as "now": refuse that, unless it was meant (judged against git's own "now" in
    the same call: "3 seconds ago" is a date too)."""
    when, now = (int(line.rpartition("=")[2] or 0) for line in repo.out(     # --min-age=…
        "rev-parse", f"--before={text}", "--before=now").splitlines())
    if when == now and text.strip().lower() != "now":
        raise GtfcError(f"{text!r} is " + ("neither a commit nor " if option == "--at" else
                                           "not ") + "a date git understands — e.g. "
                        f"{option} '2 hours ago', {option} '2026-11-24 09:00'" +
                        (", or a commit from gtfc log" if option == "--at" else ""))
    return when


# Services: gtfc-watch started at boot ########################################

def service_name(repo_path: str) -> str:
    """gtfc-watch-myrepo-1a2b3c4d: readable, and unique per repo path."""
    import hashlib                          # see "Imported where used"
    base = re.sub(r"[^A-Za-z0-9_-]", "_", os.path.basename(repo_path))[:40] or "root"
    return f"gtfc-watch-{base}-{hashlib.sha1(repo_path.encode()).hexdigest()[:8]}"


def service_os() -> str:
    return {"darwin": "macos"}.get(sys.platform, "freebsd" if sys.platform.startswith(
        "freebsd") else "linux")


class Service(NamedTuple):
    """One repo's watcher as a native service, for the user who owns the repo."""
    repo: str
    gtfc: str                   # the installed gtfc, by absolute path
    user: str                   # who runs it
    system: bool                # a system-wide unit (root, --user NAME) or the user's own
    user_home: str

    @property
    def name(self) -> str:
        return service_name(self.repo)

    def path(self, os_name: str) -> str:
        if os_name == "macos":
            return os.path.join(self.user_home, "Library", "LaunchAgents",
                                f"net.gtfc.{self.name}.plist")
        if os_name == "freebsd":
            return f"/usr/local/etc/rc.d/{self.name.replace('-', '_')}"
        if self.system:
            return f"/etc/systemd/system/{self.name}.service"
        return os.path.join(self.user_home, ".config", "systemd", "user",
                            f"{self.name}.service")


def render_systemd(svc: Service) -> str:
    # Restart=always with a pause: at boot the network or a peer may not be up yet;
    # the watcher itself retries peers with backoff, and pulls before it pushes.
    lines = ["[Unit]", f"Description=gtfc: keep {svc.repo} in sync with its peers"]
    if svc.system:      # a user manager has no network-online.target
        lines += ["Wants=network-online.target", "After=network-online.target"]
    lines += ["", "[Service]", "Type=simple"]
    if svc.system:
        lines.append(f"User={svc.user}")
    lines += [f"ExecStart={svc.gtfc} watch {shlex.quote(svc.repo)}", "Restart=always",
              "RestartSec=10", "", "[Install]",
              f"WantedBy={'multi-user.target' if svc.system else 'default.target'}"]
    return "\n".join(lines) + "\n"


def render_launchd(svc: Service) -> str:
    import plistlib                         # see "Imported where used"
    log = os.path.join(svc.user_home, "Library", "Logs", f"{svc.name}.log")
    return plistlib.dumps({
        "Label": f"net.gtfc.{svc.name}",
        "ProgramArguments": [svc.gtfc, "watch", svc.repo],
        "RunAtLoad": True, "KeepAlive": True, "ThrottleInterval": 10,
        "StandardErrorPath": log, "StandardOutPath": log}).decode()


def render_rc_d(svc: Service) -> str:
    name = svc.name.replace("-", "_")
    # daemon(8): restart the watcher 10 s after it ends (-r -R), log to syslog
    # (-S), run it as the repo's owner (-u).
    return f"""#!/bin/sh
# PROVIDE: {name}
# REQUIRE: LOGIN NETWORKING sshd
# KEYWORD: shutdown
#
# gtfc: keep {svc.repo} in sync with its peers.  Enable with: sysrc {name}_enable=YES

. /etc/rc.subr

name="{name}"
rcvar="{name}_enable"
load_rc_config $name
: ${{{name}_enable:="NO"}}

pidfile="/var/run/${{name}}.pid"
command="/usr/sbin/daemon"
command_args="-r -R 10 -S -T gtfc -u {shlex.quote(svc.user)} -P ${{pidfile}} {svc.gtfc} watch {shlex.quote(svc.repo)}"

run_rc_command "$1"
"""


RENDERERS = {"linux": render_systemd, "macos": render_launchd, "freebsd": render_rc_d}


def services_for(args) -> List[Service]:
    """A Service per repo named (or registered) for the user who will run it."""
    import pwd                              # see "Imported where used"
    me = pwd.getpwuid(os.geteuid())
    if args.user and args.user != me.pw_name:
        if os.geteuid() != 0 and args.action != "show":
            raise GtfcError("--user needs root: it writes a system-wide service")
        try:
            owner = pwd.getpwnam(args.user)
        except KeyError:
            raise GtfcError(f"no user {args.user!r} on this host") from None
    else:
        owner = me
    system = os.geteuid() == 0 or owner is not me   # root: system units, run as the owner
    if args.repo:
        repos = [os.path.realpath(os.path.expanduser(args.repo))]
    elif owner is me:
        repos = [r.path for r in find_repos(None)]
    else:
        registry = os.path.join(owner.pw_dir, ".config", "gtfc", "repos")
        with contextlib.suppress(FileNotFoundError), open(registry) as f:
            repos = [l.strip() for l in f if l.strip().startswith("/")]
        if not repos:
            raise GtfcError(f"{args.user} has no gtfc repo registered ({registry})")
    for repo in repos:
        if not os.path.isdir(os.path.join(repo, ".git")):
            raise GtfcError(f"{repo} is not a gtfc repo (no .git there)")
    gtfc = os.path.join(installed_bin_dir(), "gtfc")
    return [Service(r, gtfc, owner.pw_name, system, owner.pw_dir) for r in repos]


def service_commands(svc: Service, os_name: str, action: str) -> List[List[str]]:
    """How the service manager is told: action is "enable", "disable" or "status"."""
    path = svc.path(os_name)
    if os_name == "macos":
        return {"enable": [["launchctl", "load", "-w", path]],
                "disable": [["launchctl", "unload", "-w", path]],
                "status": [["launchctl", "list", f"net.gtfc.{svc.name}"]]}[action]
    if os_name == "freebsd":
        rc = os.path.basename(path)
        return {"enable": [["sysrc", f"{rc}_enable=YES"], ["service", rc, "start"]],
                "disable": [["service", rc, "stop"], ["sysrc", "-x", f"{rc}_enable"]],
                "status": [["service", rc, "status"]]}[action]
    ctl = ["systemctl"] + ([] if svc.system else ["--user"])
    unit = f"{svc.name}.service"
    return {"enable": [ctl + ["daemon-reload"], ctl + ["enable", "--now", unit]],
            "disable": [ctl + ["disable", "--now", unit], ctl + ["daemon-reload"]],
            "status": [ctl + ["status", "--no-pager", unit]]}[action]


def run_service_commands(commands: List[List[str]]) -> Optional[str]:
    """Run them in order; None if all went well, else the failing one and why."""
    for argv in commands:
        try:
            proc = run(argv, check=False, timeout=60)
        except GtfcError as e:
            return str(e)
        if proc.returncode != 0:
            return f"`{' '.join(argv)}` failed: {last_line(proc.stderr + proc.stdout)}"
    return None


# Commands ####################################################################

def cmd_bootstrap(args) -> int:
    check_git_version()
    installed_bin_dir()         # first: peers' forced commands name the installed gtfc-shell
    path = check_repo_path(os.path.abspath(os.path.expanduser(args.dir)))
    real = os.path.realpath(path)
    for other in registered_repos():
        if real.startswith(other.rstrip("/") + "/"):
            raise GtfcError(f"{path} is inside the gtfc repo {other}, which already syncs "
                            "it — pick a folder outside it")
    if os.path.exists(path) and not os.path.isdir(path):
        raise GtfcError(f"{path} is a file — bootstrap a folder")
    if not os.path.isdir(os.path.dirname(path)):      # a typo makes no new tree of folders
        raise GtfcError(f"{os.path.dirname(path)} does not exist — create it first, or "
                        "check the path")
    repo = Repo(path)
    existing = os.path.isdir(repo.git_dir) and repo.setting("node")
    if existing and not repo.has_commit():
        existing = ""                   # a bootstrap that stopped half way: finish it
    if existing:
        info(f"{repo.path} is already a gtfc repo (node {existing})")
    else:
        name = args.name or existing or default_node_name()
        node = this_node(name, args.address, os.path.realpath(path))  # checks first
        os.makedirs(path, exist_ok=True)
        if not os.path.isdir(repo.git_dir):
            run(["git", "init", "-q", "-b", "main", repo.path])
        configure_repo(repo, name)
        write_node_record(repo, node)
        with repo.lock():
            commit_local(repo)
        housekeep(repo)     # packs a big first commit, in the background: joins copy it
        info(f"{repo.path}: gtfc repo ready, this node is {name!r}.\n"
             f"Next, on another host: ssh -A THAT-HOST, then: "
             f"gtfc-join {args.address or os.uname().nodename} "
             f"{shell_word(home_relative(repo.path))}")
    register_repo(repo.path)
    refresh_access(all_local_repos())
    return 0


def remote_gtfc_command(args: List[str]) -> str:
    """A command line for the remote login shell that finds gtfc there, even when it
    sits in ~/.local/bin or /usr/local/bin, which non-interactive ssh leaves off PATH."""
    fallback = os.path.dirname(os.path.abspath(sys.argv[0]))
    script = ('PATH="$PATH:$HOME/.local/bin:/usr/local/bin:' + fallback + '"; '
              'export PATH; command -v gtfc >/dev/null || exit 127; exec gtfc "$@"')
    return " ".join(shlex.quote(a) for a in ["sh", "-c", script, "gtfc", *args])


def operator_ssh(host: str, command: str, stdin: bytes):
    """ssh as the operator (agent, ~/.ssh/known_hosts): used by join and only there."""
    proc = run(["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"ConnectTimeout={CONNECT_TIMEOUT}", "-o", "ForwardAgent=no",
                "-o", "ClearAllForwardings=yes", "--", host, command],
               input=stdin, check=False, timeout=TRANSFER_TIMEOUT)
    if proc.returncode == 255:
        text = proc.stderr.decode(errors="replace")
        if "Host key verification failed" in text:
            raise GtfcError(f"{host}'s host key is not in your known_hosts (or changed) — "
                            f"check its fingerprint, run `ssh {host}` once to accept it, retry")
        if "Permission denied" in text:
            raise GtfcError(f"could not log in to {host} as you — connect to this host "
                            "with `ssh -A` so your agent can vouch for it, then retry")
        raise GtfcError(f"could not reach {host} ({failure_detail(text)}) — check the "
                        "name and that its sshd runs, then retry")
    if proc.returncode == 127:
        raise GtfcError(f"gtfc is not installed on {host} — scp gtfc.py {host}: && "
                        f"ssh {host} python3 gtfc.py install")
    if proc.returncode != 0:
        raise GtfcError(f"{host} refused the join: "
                        f"{last_line(proc.stderr).replace('gtfc: ', '', 1)}")
    if proc.stderr:
        sys.stderr.buffer.write(proc.stderr)
    return dict(line.split("=", 1) for line in proc.stdout.decode().splitlines()
                if "=" in line)


def cmd_join(args) -> int:
    import shutil                       # see "Imported where used"
    check_git_version()
    installed_bin_dir()         # first: peers' forced commands name the installed gtfc-shell
    host = args.host
    if not re.match(r"^([A-Za-z0-9._-]+@)?[A-Za-z0-9._:\[\]-]+$", host) \
            or host.startswith("-"):
        raise GtfcError(f"{host!r} is not a host name — give it as HOST or USER@HOST")
    given = os.path.abspath(os.path.expanduser(args.dir))
    # Peers pin the real path (a forced command compares it exactly), while the
    # remote is asked for the path as the user wrote it, relative to home.
    local = check_repo_path(os.path.realpath(given))
    if os.path.exists(local) and (not os.path.isdir(local) or os.listdir(local)):
        raise GtfcError(f"{local} exists and is not empty — join into a new folder or "
                        "move it aside (gtfc never overwrites files)")
    name = args.name or default_node_name()
    me = this_node(name, args.address, local)
    answer = operator_ssh(host, remote_gtfc_command(
        ["accept-join", home_relative(given), name]), format_node(me).encode())
    remote_path, remote_node = answer.get("path"), answer.get("node")
    if not remote_path or not remote_node:
        raise GtfcError(f"{host} gave no repo path — is gtfc there the same version?")
    created = not os.path.exists(local)
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0",
               **git_ssh_env(ssh_options(None, None)))
    progress = sys.stderr.isatty()     # a long clone shows git's progress meter
    proc = run(["git", "clone", "--progress" if progress else "-q", "--origin",
                "gtfc-join", f"ssh://{host}{remote_path}", local],
               env=env, check=False, timeout=24 * 3600, show_stderr=progress)
    if proc.returncode != 0:
        if created:
            shutil.rmtree(local, ignore_errors=True)
        why = "see git's message above" if progress else last_line(proc.stderr)
        raise GtfcError(f"cloning from {host} failed: {why} — "
                        "retry gtfc-join; it is safe to repeat")
    repo = Repo(local)
    repo.git("remote", "remove", "gtfc-join")
    configure_repo(repo, name)
    if read_nodes(repo).get(name, Node("", "", "", "", "")).key != me.key:
        raise GtfcError(f"{host} did not record this node — retry gtfc-join")
    repo.git("update-ref", f"{HAS}{remote_node}", repo.head())
    register_repo(repo.path)
    refresh_access(all_local_repos())
    report(send_head(repo))
    info(f"{repo.path}: joined through {host} as {name!r}; peers: "
         f"{', '.join(p.name for p in peers(repo))}")
    return 0


def cmd_accept_join(args) -> int:
    """Remote half of join: record the new node, let it in, tell the others."""
    try:
        repo = find_repos(args.dir)[0]
    except GtfcError:
        raise GtfcError(f"{args.dir} is not a gtfc repo on {os.uname().nodename} — join "
                        "through a host that is a member") from None
    try:
        node = parse_node(args.name, sys.stdin.read(65536))
    except ValueError as e:
        raise GtfcError(f"bad node record for {args.name!r}: {e}") from None
    if node.name == repo.node:
        raise GtfcError(f"{node.name!r} is this node's own name — join with --name OTHER")
    existing = read_nodes(repo).get(node.name)
    if existing and existing.key != node.key:
        raise GtfcError(f"a node named {node.name!r} already exists with another key — "
                        "join with --name OTHER")
    with repo.lock():
        write_node_record(repo, node)
        commit_local(repo)
    refresh_access(all_local_repos())
    others = [p.name for p in peers(repo) if p.name != node.name]
    report(send_head(repo, only=others))
    print(f"path={repo.path}\nnode={repo.node}")
    return 0


def sync_each(args, step, all_well: str) -> int:
    """push and pull: run step on each repo, report peers not reached."""
    check_git_version()
    failed = False
    for repo in find_repos(args.repo):
        repo.allow_mass_delete = args.allow_mass_delete
        announce_merge_rule(repo)
        sent_to: List[str] = []
        failures = step(repo, sent_to)
        report(failures)
        failed |= bool(failures)
        info(f"{repo.path}: at {short(repo.head())}" +
             (f", sent to {', '.join(sorted(sent_to))}" if sent_to else "") +
             (f", {counted(len(failures), 'peer')} not reached" if failures else all_well))
    return 1 if failed else 0


def cmd_push(args) -> int:
    return sync_each(args, push_repo, ", peers up to date")


def cmd_pull(args) -> int:
    return sync_each(args, pull_repo, "")


def drop_member(repo: Repo, name: str) -> None:
    """Delete a node's record (committed) and forget its refs."""
    with repo.lock():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(repo.path, NODES_DIR, name))
        commit_local(repo)
    for prefix in (INBOX, HAS):
        repo.git("update-ref", "-d", prefix + name, check=False)


def cmd_remove(args) -> int:
    """Remove another node: once this reaches the others, its key is refused."""
    check_git_version()
    repos = [r for r in find_repos(args.repo) if args.node in read_nodes(r)]
    if not repos:
        raise GtfcError(f"no node named {args.node!r} in "
                        f"{args.repo or 'your gtfc repos'} — see the names in .gtfc/nodes/")
    failed = False
    for repo in repos:
        if args.node == repo.node:
            raise GtfcError(f"{args.node!r} is this node — to leave, run gtfc unjoin")
        drop_member(repo, args.node)
        refresh_access(all_local_repos())
        failures = send_head(repo)
        report(failures)
        failed |= bool(failures)
        info(f"{repo.path}: removed {args.node}; peers drop its key as they sync")
    return 1 if failed else 0


def cmd_unjoin(args) -> int:
    """Leave the cluster: tell the peers, stop syncing, keep the files and history."""
    check_git_version()
    repos = find_repos(args.repo)
    if len(repos) > 1:
        raise GtfcError("you have several gtfc repos — name the one to leave: "
                        "gtfc unjoin DIR")
    repo = repos[0]
    others = peers(repo)
    drop_member(repo, repo.node)
    failures = send_head(repo)
    report(failures)
    if others and len(failures) == len(others):
        warn(f"no peer heard that {repo.node} left — on one of them run: "
             f"gtfc remove {repo.node}")
    unregister_repo(repo.path)
    repo.git("config", "--unset", "gtfc.node")
    refresh_access(all_local_repos())
    info(f"{repo.path}: left the cluster; the folder stays, with its history, as a "
         "plain git repo")
    stop_watcher(repo)
    return 0


def stop_watcher(repo: Repo) -> None:
    """A gtfc-watch still running on a repo that left would go on committing and
    pushing as a node its peers no longer know: stop it."""
    pid = watcher_pid(repo)
    if not pid or pid < 0:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    info(f"stopped its gtfc-watch (pid {pid}); if a service ran it: "
         f"gtfc service uninstall {home_relative(repo.path)}")


def cmd_integrate(args) -> int:
    for repo in find_repos(args.repo):
        integrate(repo)
    return 0


# The installed gtfc is a launcher that imports PREFIX/lib/gtfc/gtfc.py as a module:
# Python keeps a module's compiled form (written here at install), never a script's,
# and compiling gtfc is a third of gtfc-shell's start-up, paid on every push.  It runs
# python3 -IS: gtfc needs only the standard library, and skipping site (whose .pth
# files may import whole packages) takes Python's start from ~30 ms to ~7 ms; -I also
# keeps PYTHON* variables out.  A shell script, so that python3 is found on each
# user's PATH as `#!/usr/bin/env python3` would (which cannot pass flags portably).
LAUNCHER = """#!/bin/sh
# Written by `gtfc install`: gtfc itself is {lib}/gtfc.py (run `gtfc --help`).
exec python3 -IS -c 'import sys; sys.path.insert(0, sys.argv.pop(1)); sys.argv.pop(0)
import gtfc; sys.exit(gtfc.main())' {quoted_lib} "$0" "$@"
"""


def cmd_install(args) -> int:
    import py_compile                       # see "Imported where used"
    import importlib.util
    prefix = os.path.abspath(os.path.expanduser(args.prefix or (
        "/usr/local" if os.geteuid() == 0 else os.path.join(home(), ".local"))))
    bindir, libdir = os.path.join(prefix, "bin"), os.path.join(prefix, "lib", "gtfc")
    for folder in (bindir, libdir):
        os.makedirs(folder, exist_ok=True)
    program = os.path.join(libdir, "gtfc.py")
    source = os.path.realpath(__file__)
    if source != os.path.realpath(program):
        with open(source, encoding="utf-8") as f:
            # Atomic: a running watcher keeps its old file, new runs get the new.
            write_file_atomic(program, f.read(), mode=0o644)
    with contextlib.suppress(py_compile.PyCompileError, OSError):
        py_compile.compile(program, cfile=importlib.util.cache_from_source(program),
                           doraise=True)
    launcher = LAUNCHER.format(lib=libdir, quoted_lib=shlex.quote(libdir))
    write_file_atomic(os.path.join(bindir, "gtfc"), launcher, mode=0o755)
    for link in LINK_NAMES:
        path = os.path.join(bindir, link)
        if os.path.islink(path) and os.readlink(path) == "gtfc":
            continue
        if os.path.lexists(path) and not os.path.islink(path):
            raise GtfcError(f"{path} exists and is not gtfc's symlink — remove it, rerun")
        tmp = path + ".gtfc-new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink("gtfc", tmp)
        os.replace(tmp, path)
    info(f"installed gtfc {VERSION} in {bindir}")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        info(f"note: {bindir} is not on your PATH — add it, e.g. in ~/.profile:\n"
             f'    export PATH="{bindir}:$PATH"')
    return 0


def cmd_watch(args) -> int:
    check_git_version()
    repos = find_repos(args.repo)
    stop = threading.Event()
    wake_r, wake_w = os.pipe()
    errors: List[str] = []

    def on_signal(signum, frame):
        stop.set()
        os.write(wake_w, b"x")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # `kill -USR1 PID` prints what every thread is doing: for a watcher that seems stuck.
    import faulthandler                 # see "Imported where used"
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    LOG.configure(Log.ERROR if args.quiet else Log.DETAIL if args.verbose else Log.EVENT,
                  stamp=True, to_syslog=args.syslog)
    with contextlib.ExitStack() as stack:
        loops = []
        for repo in repos:
            try:
                stack.enter_context(watch_lock(repo))
            except GtfcError as e:
                if len(repos) == 1:
                    raise
                warn(f"{e}; watching the others")   # one busy repo must not block all
                continue
            add_repo_config(repo)
            announce_merge_rule(repo)
            make_watcher = functools.partial(open_watcher, repo.path, force_poll=args.poll)
            loops.append(RepoWatch(repo, make_watcher, stop))
            stack.callback(lambda loop=loops[-1]: loop.doorbell.close())

        def run_loop(loop):
            try:
                loop.run(wake_r)
            except Exception as e:      # report, and stop the others: never half-watch
                errors.append(str(e) if isinstance(e, GtfcError) else repr(e))
                stop.set()
                os.write(wake_w, b"x")
                if not isinstance(e, GtfcError):
                    raise

        if not loops:
            raise GtfcError("every registered repo already has a gtfc-watch running")
        refresh_access(all_local_repos())   # e.g. after an upgrade changed the lines
        threads = [threading.Thread(target=run_loop, args=(loop,), daemon=True)
                   for loop in loops]
        for t in threads:
            t.start()
        stop.wait()
        for t in threads:
            t.join(timeout=10)      # a loop ends at once; a peer's send in flight may not
    if errors:
        raise GtfcError(errors[0])
    print("gtfc: watch stopped", file=sys.stderr)
    return 0


def cmd_status(args) -> int:
    try:
        statuses = [status_or_error(repo) for repo in find_repos(args.repo)]
    except GtfcError:
        if args.repo or not registered_repos():
            raise
        statuses = []               # every registered repo is missing: listed below
    if not args.repo:               # registered repos whose folder is gone count too
        statuses += [{"repo": path, "missing": True, "attention": attention({"missing": 1})}
                     for path in registered_repos()
                     if not os.path.isdir(os.path.join(path, ".git"))]
    if args.json:
        import json                         # see "Imported where used"
        print(json.dumps({"repos": statuses}, indent=2))
    elif args.prometheus:
        print(prometheus_text(statuses), end="")
    else:
        for status in statuses:
            print_status(status)
    return 1 if any(s["attention"] for s in statuses) else 0


PROMETHEUS_METRICS = (
    ("gtfc_attention", "things status says need attention (0: all well)"),
    ("gtfc_conflict_copies", "conflict copies in the folder"),
    ("gtfc_held_back_files", "files over gtfc.maxFileSize, not synced"),
    ("gtfc_uncommitted_files", "local changes not committed yet"),
    ("gtfc_disk_free_bytes", "free space on the folder's file system"),
    ("gtfc_history_bytes", "what the history takes in .git/objects"),
    ("gtfc_watcher_running", "1 if gtfc-watch runs for the repo"),
    ("gtfc_peer_reachable", "1 if the peer answered just now"),
    ("gtfc_peer_in_sync", "1 if the peer and this node are on the same commit"),
    ("gtfc_peer_last_push_seconds", "seconds since this node last sent to the peer"),
    ("gtfc_peer_last_pull_seconds", "seconds since this node last fetched from the peer"),
)


def prometheus_text(statuses: List[dict]) -> str:
    """Status in the Prometheus text format, for node_exporter's textfile collector.
    A missing or unreadable repo reports attention only."""
    samples: Dict[str, List[str]] = {name: [] for name, _ in PROMETHEUS_METRICS}

    def add(name, labels, value):
        if value is not None:
            text = ",".join(f'{k}="{prom_escape(v)}"' for k, v in labels.items())
            number = int(value) if float(value).is_integer() else round(float(value), 3)
            samples[name].append(f"{name}{{{text}}} {number}")
    for st in statuses:
        repo = {"repo": st["repo"]}
        add("gtfc_attention", repo, len(st["attention"]))
        if "watcher_pid" in st:
            add("gtfc_watcher_running", repo, bool(st["watcher_pid"]))
        if st.get("missing") or st.get("error"):
            continue
        add("gtfc_conflict_copies", repo, len(st["conflict_copies"]))
        add("gtfc_held_back_files", repo, len(st["held_back"]))
        add("gtfc_uncommitted_files", repo, len(st["uncommitted"]))
        add("gtfc_disk_free_bytes", repo, st["disk_free"])
        add("gtfc_history_bytes", repo, st["history_bytes"])
        for peer in st["peers"]:
            labels = dict(repo, peer=peer["name"])
            add("gtfc_peer_reachable", labels, peer["reachable"])
            add("gtfc_peer_in_sync", labels,
                peer["reachable"] and peer["they_lack"] == 0 and peer["we_lack"] == 0)
            add("gtfc_peer_last_push_seconds", labels, peer["last_push_s"])
            add("gtfc_peer_last_pull_seconds", labels, peer["last_pull_s"])
    lines = []
    for name, help_text in PROMETHEUS_METRICS:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *samples[name]]
    return "\n".join(lines) + "\n"


def prom_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def cmd_log(args) -> int:
    if args.path:
        repo, rel = repo_of_path(args.path)
    else:
        repos = find_repos(None)
        if len(repos) > 1:
            raise GtfcError("you have several repos — name one, or a path in it: "
                            f"gtfc log {home_relative(repos[0].path)}")
        repo, rel = repos[0], ""
    # Edits by nodes, and the conflict copies that gtfc's merges made.
    entries = history(repo, rel, args.number, "--no-merges") + [
        entry for entry in history(repo, rel, args.number, "--merges",
                                   "--diff-merges=first-parent", "--diff-filter=A")
        if COPY_MARK in entry[4]]
    if not entries and rel:
        raise GtfcError(f"{rel} has no history in {repo.path} — check the name "
                        "(gtfc log with no path lists recent changes)" + forgotten_note(repo))
    actions = {"A": "added", "M": "changed", "D": "deleted", "T": "retyped"}
    entries.sort(key=lambda e: -e[0])                                          # stable
    # -n: the newest commits of both lists, together (each may list several paths).
    newest = set(list(dict.fromkeys(commit for _, commit, _, _, _ in entries))[:args.number])
    for when, commit, node, kind, name in (e for e in entries if e[1] in newest):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
        action = "conflict copy" if node == MERGE_IDENTITY[0] else actions.get(kind, kind)
        target = meta_target(os.fsencode(name))
        if target:          # a metadata record: a mode or owner set (A, M) or back to default
            name = os.fsdecode(target[0]) + ("/" if target[1] else "")
            action = "perms" if node != MERGE_IDENTITY[0] else action
        info(f"{stamp}  {commit}  {node:<12} {action:<8} {name}")
    start = current_horizon(repo)
    if start:
        info(f"(history here starts {commit_date(repo, start)[:16]}: older history was "
             f"forgotten, see {HISTORY_DIR}/)")
    return 0


def cmd_restore(args) -> int:
    repo, rel = repo_of_path(args.path)
    if not rel:
        raise GtfcError("name a file or folder inside the repo, not the repo itself")
    integrate(repo)             # what is there now goes into history first: nothing lost
    # Locked until the modes are on: git writes the files private, and a watcher's
    # round in between would commit them so, for every host to take.
    with repo.lock(timeout=LOCK_TIMEOUT):
        source = restore_locked(repo, rel, args.at)
    when = repo.out("log", "-1", "--format=%ci", source)
    failures = push_repo(repo)
    report(failures)
    info(f"restored {rel} as it was at {when} ({short(source)}); " +
         (f"{counted(len(failures), 'peer')} not reached yet" if failures else "peers have it"))
    return 1 if failures else 0


def restore_locked(repo: Repo, rel: str, at: Optional[str]) -> str:
    """Write rel as it was before at, modes and all; the commit it came from."""
    full = os.path.join(repo.path, rel)
    untracked = os.path.isfile(full) and repo.git(
        "cat-file", "-e", f"HEAD:{rel}", check=False).returncode != 0
    if untracked or worktree_changes(repo, {rel}):
        raise GtfcError(f"{rel} holds changes gtfc did not commit (over gtfc.maxFileSize, "
                        "or ignored) — move it aside first, so the restore loses nothing")
    source = version_before(repo, rel, at)
    if repo.git("cat-file", "-e", f"{source}:{rel}", check=False).returncode != 0:
        raise GtfcError(f"{rel} did not exist at {short(source)} — see gtfc log {rel}")
    read_whole(repo, source, rel)
    repo.git("restore", f"--source={source}", "--worktree", "--overlay", "--", rel,
             env={"GIT_LITERAL_PATHSPECS": "1"}, umask=CHECKOUT_UMASK)
    restore_metadata(repo, source, rel)
    return source


def restore_metadata(repo: Repo, source: str, rel: str) -> None:
    """What a restore wrote (private: CHECKOUT_UMASK) gets the modes and owners it
    had in source: its META_DIR files as they were there, then applied.  A 600
    secret comes back 600, and is readable by no one else on the way."""
    path = os.fsencode(rel)
    prefix = meta_path(path, False)             # a file's, or a folder's own and its files'
    listed = repo.git("ls-tree", "-r", "-z", source, "--", os.fsdecode(prefix),
                      env={"GIT_LITERAL_PATHSPECS": "1"}).stdout
    wanted = {name: repo.git("cat-file", "blob", meta.split()[2].decode()).stdout
              for meta, name in (entry.split(b"\t", 1) for entry in listed.split(b"\0") if entry)}
    here = os.path.join(repo.path, os.fsdecode(prefix))
    present = {os.fsencode(os.path.relpath(os.path.join(folder, name), repo.path))
               for folder, _dirs, files in os.walk(here) for name in files}
    if os.path.isfile(here):
        present.add(prefix)
    if metadata_kept(repo):
        for meta in sorted(present | set(wanted)):
            write_meta_file(repo, meta, wanted.get(meta))
    restored = repo.git("ls-tree", "-r", "-t", "-z", "--name-only", source, "--", rel,
                        env={"GIT_LITERAL_PATHSPECS": "1"}).stdout.split(b"\0")
    apply_all(repo, filter(None, restored))


def read_whole(repo: Repo, commit: str, rel: str) -> None:
    """Read every file under rel in commit, or raise RepoDamaged: git restore
    removes a file before it reads the version it writes, and a removal that
    stays would sync as a delete."""
    listed = repo.git("ls-tree", "-r", "-z", commit, "--", rel,
                      env={"GIT_LITERAL_PATHSPECS": "1"}).stdout
    fields = [entry.split(b"\t", 1)[0].split() for entry in listed.split(b"\0") if entry]
    blobs = b"".join(oid + b"\n" for _, kind, oid in fields if kind == b"blob")
    found = repo.git("cat-file", "--batch-check", input=blobs).stdout
    # Each file read to the end, and dropped: a big folder must not fill memory.
    read = subprocess.run(["git", "-C", repo.path, "cat-file", "--batch"], input=blobs,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if b" missing\n" in found or read.returncode:
        suspect_damage(repo)
        raise RepoDamaged(f"{rel} at {short(commit)} cannot be read: the repo is damaged "
                          "(an object is missing or damaged) — gtfc repairs it from its peers "
                          "at its next round (or now: gtfc-pull); then try again")


def cmd_forget(args) -> int:
    """Set how long every host keeps history, or drop what is older than a date."""
    check_git_version()
    if args.keep is None and args.before is None:
        args.parser.error("say --keep DURATION or --before WHEN (gtfc status says where "
                          "history starts)")
    failed = False
    for repo in find_repos(args.repo):
        folder = os.path.join(repo.path, HISTORY_DIR)
        if args.keep == "all":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, "keep"))
        elif args.keep:
            write_file_atomic(os.path.join(folder, "keep"), args.keep + "\n",
                              scratch=repo.make_state_dir())
        if args.before is not None:
            try:
                when = check_date(repo, args.before, "--before")
            except GtfcError as e:
                args.parser.error(str(e))
            if when > time.time():
                args.parser.error(f"{args.before!r} is in the future — say which history "
                                  "to drop, e.g. --before '180 days ago'")
            name = f"forget-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{repo.node}"
            write_file_atomic(os.path.join(folder, name), f"before {when}\n"
                              f"# history before {stamp_text(when)}, asked on {repo.node}\n",
                              scratch=repo.make_state_dir())
        size = history_bytes(repo)
        # Commits the setting, sends it, and hears from every member (their heads
        # decide how far the horizon may move), then moves it (housekeep).
        failures = pull_repo(repo)
        report(failures)
        failed |= bool(failures)
        tell_history(repo, keep_history(repo), size)
    return 1 if failed else 0


def tell_history(repo: Repo, found: "Horizon", size_before: int) -> None:
    start = current_horizon(repo)
    if start:
        when = int(repo.out("show", "-s", "--format=%ct", start))
        info(f"{repo.path}: history here starts {stamp_text(when)} ({short(start)}); "
             f"history {size_text(size_before)} -> {size_text(history_bytes(repo))} "
             f"(what was written in the last hour is pruned an hour later)")
    else:
        info(f"{repo.path}: all history is kept here for now")
    if found.held_by:
        info(f"  history is kept until {', '.join(found.held_by)} "
             f"{'is' if len(found.held_by) == 1 else 'are'} heard from again with these "
             "commits (within gtfc.pullInterval when running gtfc-watch; one that is away "
             "holds it until it is back, or removed: gtfc remove NODE)")
    info("  every host drops the same history once it has heard from every member "
         "(within gtfc.pullInterval); gtfc status says where history starts")


PURGE_WAIT = 30.0       # seconds purge waits for the peers to take the delete


def cmd_purge(args) -> int:
    """Remove every version of a path from every host's history: delete it, then
    move the horizon past the delete (history before it goes too)."""
    check_git_version()
    repo, rel = repo_of_path(args.path)
    if not rel or is_gtfc_own(os.fsencode(rel)):
        raise GtfcError("name a file or folder inside the repo (not the repo, nor .gtfc)")
    if not purge_targets(repo, rel) and not repo.out("--literal-pathspecs", "log", "-1",
                                                     "--format=%h", "--", rel) \
            and not lingering_versions(repo, [rel]):
        raise GtfcError(f"{rel} is not in this repo's history — check the name with gtfc log"
                        + forgotten_note(repo))
    if not args.yes:
        raise GtfcError(f"purge removes every version of {rel} (and its conflict copies) "
                        "from every host — and with them ALL history before now, on every "
                        "host: gtfc log and restore then start here.  A host that is away "
                        "keeps it until it is back.  Run again with --yes to do it")
    repo.allow_mass_delete = True
    integrate(repo)             # what is there now goes into history first
    import shutil               # see "Imported where used"
    folder = os.path.join(repo.path, rel)
    if os.path.isdir(folder) and not os.path.islink(folder):
        shutil.rmtree(folder)   # all of it: an empty folder left would sync as one
    for path in purge_targets(repo, rel):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(repo.path, path))
    integrate(repo)
    if purge_targets(repo, rel):
        raise GtfcError(f"{rel} was written again while it was being purged — stop what "
                        "writes it, then run gtfc purge again")
    write_file_atomic(os.path.join(repo.path, HISTORY_DIR, f"purge-{repo.head()}"), rel + "\n",
                      scratch=repo.make_state_dir())
    integrate(repo)
    failures = send_head(repo)
    deadline = time.monotonic() + PURGE_WAIT
    while True:                 # until every peer that answers has taken the delete
        unreached = for_each_peer(fetch_from_peer, repo, peers(repo))
        integrate(repo)
        found = keep_history(repo)
        done = rel not in history_facts(repo)["purges_pending"]
        if done or time.monotonic() > deadline or \
                found.held_by and set(found.held_by) <= set(unreached):
            break
        time.sleep(1.0)
    failures.update(unreached)
    report(failures)
    if done:
        info(f"purged {rel} from this host, with the history before it; every host "
             "drops it once it has heard from every member (within gtfc.pullInterval)")
        return 0
    info(f"{rel} is deleted and the purge sent, but not finished here: "
         f"{', '.join(found.held_by) or 'the peers'} must be heard from first — gtfc "
         "status says when it is done (on each host)")
    return 1


def purge_targets(repo: Repo, rel: str) -> List[str]:
    """rel's files (all of them, for a folder) and its conflict copies, in HEAD."""
    folder = os.path.dirname(rel)
    listed = repo.git("ls-tree", "-r", "-z", "--name-only", "HEAD", "--",
                      *([folder + "/"] if folder else []),
                      env={"GIT_LITERAL_PATHSPECS": "1"}).stdout
    return sorted(p for p in map(os.fsdecode, filter(None, listed.split(b"\0")))
                  if p == rel or p.startswith(rel + "/") or names_a_copy_of(p, rel))


def cmd_service(args) -> int:
    os_name = args.os or service_os()
    if os_name != service_os() and args.action != "show":
        raise GtfcError(f"this host is {service_os()}: --os {args.os} is for "
                        f"gtfc service show only")
    services = services_for(args)
    if args.action == "show":
        for svc in services:
            info(f"# {svc.path(os_name)}\n{RENDERERS[os_name](svc)}")
        return 0
    failed = False
    for svc in services:
        path = svc.path(os_name)
        if args.action == "install":
            write_file_atomic(path, RENDERERS[os_name](svc),
                              mode=0o755 if os_name == "freebsd" else 0o644)
            info(f"wrote {path}")
            why = run_service_commands(service_commands(svc, os_name, "enable"))
            if why:
                failed = True
                warn(f"{why} — the file is in place; enable it by hand: " +
                     "; ".join(" ".join(c) for c in service_commands(svc, os_name, "enable")))
            else:
                info(f"{svc.name}: enabled and started; it starts again at boot")
            if os_name == "linux" and not svc.system:
                info(f"note: a user unit starts at boot, before you log in, only with: "
                     f"sudo loginctl enable-linger {svc.user}")
        elif args.action == "uninstall":
            why = run_service_commands(service_commands(svc, os_name, "disable"))
            if os.path.exists(path):
                os.unlink(path)
                info(f"removed {path}")
            if why:
                warn(f"{why} (the file is removed anyway)")
        else:
            pid = watcher_pid(Repo(svc.repo))
            present = os.path.exists(path)
            info(f"{svc.repo}: service file {path} "
                 f"{'present' if present else 'absent'}; gtfc-watch " +
                 (f"running (pid {pid})" if pid else "not running"))
            why = run_service_commands(service_commands(svc, os_name, "status")) \
                if present else None
            failed |= bool(why) or not pid or not present
            if why:
                info(f"  {why}")
    return 1 if failed else 0


# Command line ################################################################

EXAMPLES = """\
examples:
  python3 gtfc.py install            put gtfc and its gtfc-* links in /usr/local/bin
                                     (root) or ~/.local/bin
  gtfc-bootstrap ~/myrepo            on alpha: make ~/myrepo the synced folder
  ssh -A beta; gtfc-join alpha ~/myrepo
                                     on beta: join through alpha (agent used once)
  gtfc-push / gtfc-pull              send / fetch now (no argument: the repo you are
                                     in, else every repo you bootstrapped or joined)
  gtfc-watch                         keep syncing as files change (Ctrl-C stops)

exit status: 0 ok; 1 an error, or a peer was not reached (the others still got
everything); 2 bad usage.  Every error is one line on stderr saying what to do.
"""


def build_parser(called_as: str = "gtfc") -> "argparse.ArgumentParser":
    """called_as: the name gtfc runs under (gtfc-push names its command's usage)."""
    import argparse                     # see "Imported where used"
    parser = argparse.ArgumentParser(
        prog="gtfc", description="Mirror one directory across hosts with git over ssh.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gtfc {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, func, help, epilog=None):
        p = sub.add_parser(name, help=help, description=help, epilog=epilog,
                           prog=called_as if called_as == f"gtfc-{name}" else None,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func, parser=p)    # so that a bad option gets this usage
        return p

    def repo_arg(p):
        p.add_argument("repo", nargs="?", help="repo folder (default: the repo you are "
                       "in, else every registered repo)")

    def node_args(p):
        p.add_argument("--name", type=node_name,
                       help="this node's name (default: short hostname)")
        p.add_argument("--address", help="how peers reach this host "
                       "(default: its hostname)")

    p = command("bootstrap", cmd_bootstrap, "make DIR a gtfc repo (existing files are "
                "kept and committed)", "example: gtfc-bootstrap ~/myrepo")
    p.add_argument("dir")
    node_args(p)
    p = command("join", cmd_join, "join the cluster that HOST is in, cloning DIR from "
                "it (run inside `ssh -A`)",
                "example: gtfc-join alpha ~/myrepo\n\nA path under your home means the "
                "same path under your home on HOST.\nYour agent is used only to "
                "introduce this node to HOST; later syncs use\n~/.ssh/gtfc_ed25519, "
                "which peers let run nothing but gtfc-shell.")
    p.add_argument("host", help="a member of the cluster, as HOST or USER@HOST")
    p.add_argument("dir")
    node_args(p)
    def mass_delete_arg(p):
        p.add_argument("--allow-mass-delete", action="store_true",
                       help=f"commit even if over half the files (and at least "
                       f"{MASS_DELETE_MIN}) were deleted at once")

    p = command("push", cmd_push, "commit local changes and send them to every peer",
                "examples:\n  gtfc-push                   the repo you are in, else all of yours\n"
                "  gtfc-push ~/myrepo\n\nExit 1 if a peer was not reached (the others "
                "still got everything);\nit catches up by itself when it is back.")
    repo_arg(p)
    mass_delete_arg(p)
    p = command("pull", cmd_pull, "commit local changes, fetch from every peer, merge",
                "examples:\n  gtfc-pull                   e.g. at boot, or on a read-only host\n"
                "  gtfc-pull ~/myrepo")
    repo_arg(p)
    mass_delete_arg(p)
    p = command("watch", cmd_watch, "sync continuously as files change",
                f"Pulls at start and every {PULL_INTERVAL:.0f} s; unreachable peers "
                "are retried with backoff.")
    repo_arg(p)
    p.add_argument("--poll", action="store_true", help="poll the tree instead of "
                   "using inotify/kqueue (network file systems)")
    level = p.add_mutually_exclusive_group()
    level.add_argument("-v", "--verbose", action="store_true",
                       help="log more detail (every pull, also when nothing came)")
    level.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    p.add_argument("--syslog", action="store_true", help="log to syslog (facility "
                   "daemon) instead of stderr")
    p = command("install", cmd_install, "copy gtfc to PREFIX/lib/gtfc, write the launcher "
                "PREFIX/bin/gtfc and make the gtfc-* links beside it (rerun to upgrade)",
                "examples:\n  sudo python3 gtfc.py install          /usr/local/bin\n"
                "  python3 gtfc.py install               ~/.local/bin\n"
                "  python3 gtfc.py install --prefix /opt/gtfc")
    p.add_argument("--prefix", help="default /usr/local as root, else ~/.local")
    for name in ("shell", "shell.denywrite"):
        p = command(name, cmd_shell, "forced command for peers' keys in authorized_keys2 "
                    "(not for interactive use)",
                    'example line, as gtfc writes it:\n  command="/usr/local/bin/gtfc-shell '
                    '/home/alice/sync --peer beta",restrict ssh-ed25519 AAAA… gtfc-peer')
        # Only for --help: main() parses gtfc-shell's arguments by hand.
        p.add_argument("pinned", nargs="+", metavar="REPO")
        p.add_argument("--peer", action="append", metavar="NAME",
                       help="the key holder's node name(s): it may push only into "
                       "refs/gtfc/in/NAME")
    p = command("remove", cmd_remove, "remove another node from the cluster; its key "
                "is refused everywhere once the change has synced",
                "example: gtfc remove gamma")
    p.add_argument("node")
    repo_arg(p)
    p = command("unjoin", cmd_unjoin, "leave the cluster: peers drop this node's key, its "
                "gtfc-watch stops; the folder stays as a plain git repo",
                "example: gtfc-unjoin ~/myrepo")
    repo_arg(p)
    p = command("status", cmd_status, "this node, each peer (reachable, in sync, last "
                "push and pull), the watcher, local changes, held-back files, conflict "
                "copies; exit 1 if something needs attention",
                "examples:\n  gtfc status                 the repo you are in, else all\n"
                "  gtfc status --json ~/myrepo for monitoring (exit 1: needs attention)\n\n"
                "One short round trip per peer, in parallel.")
    repo_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--prometheus", action="store_true",
                   help="node_exporter's textfile format (gtfc_* metrics): e.g. every "
                        "minute from cron, to /var/lib/node_exporter/textfile/gtfc.prom "
                        "through a temporary file and mv")
    p = command("log", cmd_log, "who changed what, from which node, when (newest first)",
                "examples:\n  gtfc log                    recent changes in this repo\n"
                "  gtfc log notes.txt -n 50    the history of one file (or folder)")
    p.add_argument("path", nargs="?", help="a file or folder in a repo")
    p.add_argument("-n", "--number", type=positive_int, default=20, metavar="N",
                   help="at most N commits (default 20)")
    p = command("restore", cmd_restore, "bring back a deleted or overwritten file or "
                "folder as it was; the restore then syncs like any edit",
                "examples:\n  gtfc restore notes.txt                  deleted: its last version\n"
                "  gtfc restore notes.txt --at '2 hours ago'\n"
                "  gtfc restore etc/ --at '2026-11-24 09:00'\n"
                "  gtfc restore notes.txt --at 1a2b3c4d     a commit from gtfc log\n\n"
                "What is there now is committed first, so a restore loses nothing.")
    p.add_argument("path")
    p.add_argument("--at", metavar="WHEN|COMMIT", help="a time in git's date syntax, "
                   "or a commit (default for a deleted path: its last version)")
    p = command("forget", cmd_forget, "keep history for a while, or drop what is older "
                "than a date, on every host", f"""examples:
  gtfc forget --keep '180 days'            every host keeps 180 days of history
  gtfc forget --before '2026-06-01'        drop history older than that, now
  gtfc forget --keep all                   keep all history again (from now on)

The setting syncs ({HISTORY_DIR}/); each host then drops the history behind
the newest commit, older than the date, that every member's head has, and
prunes it.  A member that has not been heard from holds it back (gtfc status
names it); gtfc remove frees it.  The files as they are, and every version
newer than the date, stay.  gtfc log and restore say where history starts.""")
    repo_arg(p)
    what = p.add_argument_group("what to forget (one or both)")
    what.add_argument("--keep", metavar="DURATION", type=keep_duration,
                      help="'180 days', '26 weeks', '48 hours', or 'all'")
    what.add_argument("--before", metavar="WHEN", help="a date in git's syntax: "
                      "'2026-06-01', '90 days ago'")
    p = command("purge", cmd_purge, "remove every version of a file or folder from every "
                "host's history (and all history before now with it)", """example:
  gtfc purge secrets/id_rsa --yes

The path and its conflict copies are deleted and the delete syncs; then each
host drops all history up to that delete and prunes it, so the old versions
leave its object store.  A host that is away does so when it is back.  If a
host had edited the path meanwhile, its edit beats the delete: purge again.""")
    p.add_argument("path")
    p.add_argument("--yes", action="store_true", help="do it (without it, purge only "
                   "says what it would cost)")
    p = command("service", cmd_service, "run gtfc-watch as a native service: a systemd "
                "unit (Linux), a launchd agent (macOS), an rc.d script (FreeBSD)",
                "examples:\n  gtfc service install          a systemd user unit per repo of yours\n"
                "  sudo gtfc service install --user alice ~alice/sync\n"
                "                                a system unit running as alice\n"
                "  gtfc service show --os macos  print the file that would be written\n"
                "  gtfc service status           is it installed, is the watcher running")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("install", "write the service file, enable and start it"),
                         ("uninstall", "stop and disable it, remove the file"),
                         ("status", "is it installed, is the watcher running"),
                         ("show", "print the file that install would write")):
        a = actions.add_parser(action, help=text, description=text)
        repo_arg(a)
        a.add_argument("--user", metavar="NAME", help="(root) the user whose repo it "
                       "is: a system-wide service that runs as NAME")
        a.add_argument("--os", choices=sorted(RENDERERS), help="which service "
                       "manager's file (default: this host's)")
    p = command("integrate", cmd_integrate, "merge what peers pushed into the working "
                "tree (gtfc-shell does this after each push)",
                "example: gtfc integrate ~/myrepo   (after fixing a refusal by hand)")
    repo_arg(p)
    p = command("accept-join", cmd_accept_join, "remote half of gtfc-join (internal)")
    p.add_argument("dir")
    p.add_argument("name")
    return parser


def keep_duration(text: str) -> str:
    if text.strip().lower() == "all":
        return "all"
    try:
        parse_duration(text)
    except ValueError as e:
        import argparse
        raise argparse.ArgumentTypeError(str(e)) from None
    return text.strip()


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        import argparse
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def node_name(text: str) -> str:
    if not NODE_NAME_RE.fullmatch(text):
        import argparse
        raise argparse.ArgumentTypeError(f"{text!r} is not a node name (ASCII letters, "
                                         "digits, . _ -; not ending in . or .lock)")
    return text


def dispatch_args(argv: List[str]) -> List[str]:
    """gtfc-push ARGS → push ARGS: the symlink's name picks the subcommand."""
    prog = os.path.basename(argv[0])
    if prog.startswith("gtfc-"):
        return [prog[len("gtfc-"):]] + argv[1:]
    return argv[1:]


def parse_shell_args(words: List[str]) -> Tuple[List[str], List[str]]:
    """gtfc-shell's own arguments, from our authorized_keys2 line: absolute repo
    paths and `--peer NAME` pairs.  Parsed by hand: it runs on every sync, and the
    forced command should be small enough to read at a glance."""
    repos, names = [], []
    it = iter(words)
    for word in it:
        if word == "--peer":
            name = next(it, "")
            if not NODE_NAME_RE.fullmatch(name):
                raise GtfcError(f"bad --peer {name!r} in authorized_keys2 — run gtfc-pull "
                                "here to rewrite the gtfc block")
            names.append(name)
        elif word.startswith("/"):
            repos.append(word)
        else:
            raise GtfcError(f"gtfc-shell: unexpected argument {word!r} in authorized_keys2")
    if not repos:
        raise GtfcError("gtfc-shell needs the absolute path of a repo (it is a forced "
                        "command for authorized_keys2, not for interactive use)")
    return repos, names


def main(argv: Optional[List[str]] = None) -> int:
    words = dispatch_args(list(sys.argv if argv is None else argv))
    try:
        if words[:1] in (["shell"], ["shell.denywrite"]) and "--help" not in words \
                and "-h" not in words:
            return cmd_shell(*parse_shell_args(words[1:]), words[0] == "shell.denywrite")
        parser = build_parser(os.path.basename(sys.argv[0] if argv is None else argv[0]))
        if words[:1] and words[0].startswith("-") and words[0] not in ("-h", "--help",
                                                                       "--version"):
            parser.error(f"unrecognized option {words[0]} (a command's options go after "
                         "it: gtfc COMMAND --help)")
        args, unknown = parser.parse_known_args(words)
        if unknown:
            args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        return args.func(args) or 0
    except GtfcError as e:
        print(f"gtfc: {e}", file=sys.stderr, flush=True)
        return 1
    except BrokenPipeError:             # gtfc status | head: the reader has all it wants
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:    # a file system refusal: a missing folder, permissions, a full disk
        where = f": {e.filename}" if e.filename else ""
        print(f"gtfc: {e.strerror or e}{where} — check that path and its permissions",
              file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
