"""Every file a crawl will write, opened for writing and locked before the first paid call.

A feed that cannot be written (a file where a folder should be, a read-only or immutable
folder, a parent that cannot be created) would otherwise fail once per record, after every
call was paid for; two runs of the same command in one directory would interleave their
lines and pay twice. `scrapy crawl` therefore, after its argument checks and before the
engine starts:

- tries to create and write each local output (the feeds, the failures feed beside them,
  the run summary, TMAPI_STATS_FILE): what cannot be written is one `error:` line naming
  the path and the cause, exit 2. What the check itself created (the probe, the folders
  it made) is removed when a check fails;
- takes an OS lock (`flock`) beside each feed and the summary (`<file>.lock`, holding the
  pid), and on the answer store (`answers.sqlite3.lock`), held until the process exits:
  a second run writing the same file is refused at start, naming the first's pid. A lock
  dies with its process (kill -9 included), so a stale lock file never blocks a run; the
  lock files are removed at a clean exit.

Feeds in object storage (s3://, gs://) are checked by tmapi_spiders/crawl/storage.py (`remote`
lists them); other remote schemes (ftp://...) are left to Scrapy.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from scrapy.settings import BaseSettings

LOCK_SUFFIX = ".lock"
PROBE_BYTES = 4096
# Placeholders whose value is the same for every run of one command (with one worker id):
# a path made only of these names the same file in two runs, which must not both write it.
STABLE_PARAMS = frozenset({"name", "worker", "host"})


class OutputError(Exception):
    """An output cannot be written, or another run is writing it: the one line to show."""


@dataclass(frozen=True)
class Output:
    what: str  # "the products feed", "the run summary", ...
    path: str
    lock: bool  # whether two runs could name this same file


class _Params(Mapping[str, Any]):
    """Feed URI placeholders (`uri % params`) with a stand-in for any Scrapy fills in later
    (a spider attribute, `%(batch_id)s`), and the names of those used."""

    def __init__(self, known: dict[str, Any]) -> None:
        self.known = known
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.used.add(key)
        return self.known.get(key, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)


def local_path(uri: str) -> str | None:
    """The file a feed URI names on this machine: a plain path or file://; None for
    stdout and remote schemes."""
    if uri in ("-", "stdout:") or uri.startswith(("stdout:", "-:")):
        return None
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return unquote(parts.path)
    if len(parts.scheme) <= 1:  # a plain path (or a Windows drive letter)
        return uri
    return None


def resolve(template: str, known: dict[str, Any]) -> tuple[str, bool]:
    """The template with its placeholders filled, and whether the result names the same
    file in every run (only STABLE_PARAMS used)."""
    params = _Params(known)
    try:
        path = template % params
    except (TypeError, ValueError, KeyError):
        return template, False
    return path, params.used <= STABLE_PARAMS


def planned(settings: BaseSettings, spider_name: str, stamp: str) -> list[Output]:
    """The local files this crawl will write, from its completed FEEDS (feeds.configure)."""
    from tmapi_spiders.crawl import feeds
    from tmapi_spiders.extensions.summary import summary_path

    known = {
        "name": spider_name,
        "time": stamp,
        "batch_time": stamp,
        "batch_id": 1,
        "worker": settings.get("TMAPI_WORKER_ID") or "",
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    found: list[Output] = []
    first_products: str | None = None
    for uri, options in settings.getdict("FEEDS").items():
        resolved, stable = resolve(str(uri), known)
        is_failures = feeds.failures_only(options)
        if not is_failures and first_products is None:
            first_products = resolved
        path = local_path(resolved)
        if path:
            found.append(Output("the failures feed" if is_failures else "the products feed", path, stable))
    if settings.getbool("TMAPI_SUMMARY", True):
        given = settings.get("TMAPI_SUMMARY_FILE")
        output_dir = settings.get("TMAPI_OUTPUT_DIR") or "output"
        path = given or summary_path(first_products, output_dir, spider_name, stamp)
        found.append(Output("the run summary", path, bool(given) or stamp not in path))
    stats = str(settings.get("TMAPI_STATS_FILE") or "")
    if stats:
        path = stats.replace("%(name)s", spider_name).replace("%(worker)s", known["worker"])
        found.append(Output("TMAPI_STATS_FILE", path, False))
    return found


def remote(settings: BaseSettings, spider_name: str, stamp: str) -> list[tuple[str, str]]:
    """(what, uri) of each feed of this crawl in object storage (storage.LIBRARIES), from its
    completed FEEDS."""
    from tmapi_spiders.crawl import feeds, storage

    known = {"name": spider_name, "time": stamp, "batch_time": stamp, "batch_id": 1}
    known["worker"] = settings.get("TMAPI_WORKER_ID") or ""
    found: list[tuple[str, str]] = []
    for uri, options in settings.getdict("FEEDS").items():
        classes = [str(c) for c in ((options or {}).get("item_classes") or ())]
        resolved, _stable = resolve(str(uri), known)
        if storage.is_remote(resolved):
            found.append(("the failures feed" if feeds.FAILURES in classes else "the products feed", resolved))
    return found


# -- can it be written? --------------------------------------------------------------------


def cause(exc: OSError, path: str) -> str:
    """The OS's reason, with the file standing where a folder should be when that is it."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOTDIR:
        head = os.path.dirname(os.path.abspath(path))
        while head and head != os.path.dirname(head):
            if os.path.lexists(head) and not os.path.isdir(head):
                return f"{reason}: {head} is a file, not a folder"
            head = os.path.dirname(head)
    return reason


def _make_parents(directory: str, made: list[str]) -> None:
    """os.makedirs, remembering the folders it created (to remove them if a check fails)."""
    missing: list[str] = []
    head = os.path.abspath(directory)
    while not os.path.lexists(head):
        missing.append(head)
        head = os.path.dirname(head)
    if not os.path.isdir(head):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), directory)
    for folder in reversed(missing):
        try:
            os.mkdir(folder)
        except FileExistsError:
            if os.path.isdir(folder):
                continue  # made meanwhile by another process (workers started together): not ours to remove
            raise
        made.append(folder)


def probe(path: str, made: list[str]) -> None:
    """Open the output for writing without truncating it and, where the file is new, write a
    block into it and remove it: OSError says why the crawl could not write there."""
    _make_parents(os.path.dirname(os.path.abspath(path)), made)
    existed = os.path.lexists(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        if not existed:
            os.write(fd, b"\0" * PROBE_BYTES)  # a full disk says so here
    finally:
        os.close(fd)
        if not existed:
            os.remove(path)


# -- one writer at a time ------------------------------------------------------------------


class Lock:
    """An exclusive flock on `<path>.lock`, which holds the owner's pid; the kernel drops it
    when the process ends, however it ends."""

    def __init__(self, path: str, what: str, elsewhere: str = "write elsewhere") -> None:
        self.path = path
        self.what = what
        self.elsewhere = elsewhere
        self.lock_path = path + LOCK_SUFFIX
        self.fd: int | None = None

    def acquire(self) -> None:
        """OutputError naming the other run's pid when one holds the lock."""
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _owner(fd)
                os.close(fd)
                raise OutputError(
                    f"another run ({owner}) is writing {self.what} {self.path}: wait for it to end, or"
                    f" {self.elsewhere} (its lock: {self.lock_path})"
                ) from None
            except OSError:
                os.close(fd)
                raise
            # The file may have been removed by the run that held it just before we locked it:
            # a lock on a removed file guards nothing, so take the one now at that path.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock_path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        """Remove the lock file while still holding the lock, then let go of it."""
        if self.fd is None:
            return
        try:
            os.remove(self.lock_path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def _owner(fd: int) -> str:
    """`pid N` from a held lock file (the owner writes it just after locking: a few tries)."""
    for _ in range(20):
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        except OSError:
            break
        if text.isdigit():
            return f"pid {text}"
        time.sleep(0.025)
    return "pid unknown"


class Guard:
    """The locks one crawl holds, released together (at the end of the run, or at exit)."""

    def __init__(self) -> None:
        self.locks: list[Lock] = []
        atexit.register(self.release)

    def take(self, lock: Lock) -> None:
        lock.acquire()
        self.locks.append(lock)

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()
        self.locks.clear()


def prepare(outputs: Iterable[Output], store_dir: str | None = None) -> Guard:
    """Check every output can be written and lock those two runs could share (and the answer
    store, when given): OutputError is the one line to show, and then nothing is left held or
    created by this check."""
    guard = Guard()
    made: list[str] = []
    try:
        seen: set[str] = set()
        for output in outputs:
            path = os.path.abspath(output.path)
            try:
                probe(path, made)
            except OSError as exc:
                raise OutputError(f"{output.what} {output.path} cannot be written ({cause(exc, path)})") from None
            if output.lock and path not in seen:
                seen.add(path)
                _take(guard, Lock(path, output.what))
        if store_dir:
            # The answer store's module (SQLite) only with a store: every command imports this one at start.
            from tmapi_spiders.jobs.answer_store import DB_NAME

            elsewhere = "give this run another -s TMAPI_CACHE_DIR"
            store = Lock(os.path.join(store_dir, DB_NAME), "the answer store", elsewhere)
            _take(guard, store)
    except BaseException:
        guard.release()
        for folder in reversed(made):
            try:
                os.rmdir(folder)
            except OSError:
                pass
        raise
    return guard


def _take(guard: Guard, lock: Lock) -> None:
    try:
        guard.take(lock)
    except OSError as exc:
        reason = cause(exc, lock.lock_path)
        raise OutputError(f"{lock.what} {lock.path}: its lock {lock.lock_path} cannot be taken ({reason})") from None
