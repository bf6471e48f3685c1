"""Every local file a crawl will write, probed for writing and locked (`<file>.lock`, an flock holding
the pid) before the first paid call: an unwritable path or a second run on the same file is one
`error:` line (exit 2), not a failure per record after every call was paid; their names (`beside`), and
the write of a whole file (`whole`, `write_whole`). Object storage: storage.py."""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import os
import re
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from scrapy.settings import BaseSettings

from tmapi_spiders import registry
from tmapi_spiders.crawl import feeds, storage

LOCK_SUFFIX = ".lock"
PROBE_BYTES = 4096
SUMMARY_SUFFIX = ".summary.json"
# Placeholders the same in every run of one command: a path made of only these is shared by two runs.
STABLE_PARAMS = frozenset({"name", "worker", "host"})
_PLACEHOLDER = re.compile(r"%\(([^)]*)\)")


class OutputError(Exception):
    """An output cannot be written, or another run is writing it: the one line to show."""


@dataclass(frozen=True)
class Output:
    what: str  # "the products feed", "the run summary", ...
    path: str
    lock: bool  # whether two runs could name this same file


class _Params(dict):
    """Feed URI placeholders (`uri % params`), a stand-in for those Scrapy fills later."""

    def __missing__(self, key: str) -> str:
        return key


def local_path(uri: str) -> str | None:
    """The file a feed URI names on this machine (a plain path or file://); None for stdout and remote."""
    if feeds.is_stdout(uri):
        return None
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return unquote(parts.path)
    if len(parts.scheme) <= 1:  # a plain path (or a Windows drive letter)
        return uri
    return None


def resolve(template: str, known: dict[str, Any]) -> tuple[str, bool]:
    """The template filled, and whether it names the same file in every run (only STABLE_PARAMS used)."""
    try:
        path = template % _Params(known)
    except (TypeError, ValueError, KeyError):
        return template, False
    return path, set(_PLACEHOLDER.findall(template.replace("%%", ""))) <= STABLE_PARAMS


@contextlib.contextmanager
def whole(path: str | os.PathLike[str]) -> Iterator[str]:
    """A `.part` path to write `path` at: renamed over it when the block ends, removed if it raises,
    so a reader never opens half a file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.part"
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_whole(path: str | os.PathLike[str], chunks: Iterable[str]) -> None:
    """Write the text `chunks` to `path` whole or not at all."""
    with whole(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(chunks)


def beside(path: str | os.PathLike[str], suffix: str) -> str:
    """`x/products.jsonl` -> `x/products<suffix>`, the way the crawl names its other files."""
    head, name = os.path.split(path)
    stem, dot, _ext = name.rpartition(".")
    return os.path.join(head, (stem if dot and stem else name) + suffix)


def summary_path(products_uri: str | None, output_dir: str, spider_name: str, stamp: str) -> str:
    """`x/products.jsonl` -> `x/products.summary.json`; under the output directory for a feed that is
    not a local file (stdout, s3://...)."""
    path = local_path(products_uri) if products_uri else None
    if path:
        return beside(path, SUMMARY_SUFFIX)
    return os.path.join(output_dir, f"{spider_name}-{stamp}{SUMMARY_SUFFIX}")


def summary_file(settings: BaseSettings, products_uri: str | None, spider_name: str, stamp: str) -> str:
    """Where the run summary goes: TMAPI_SUMMARY_FILE, else beside the first products feed."""
    output_dir = registry.read(settings, "TMAPI_OUTPUT_DIR") or "output"
    return registry.read(settings, "TMAPI_SUMMARY_FILE") or summary_path(products_uri, output_dir, spider_name, stamp)


def stats_file(settings: BaseSettings, spider_name: str) -> str:
    """TMAPI_STATS_FILE with its `%(name)s` and `%(worker)s` filled ("": no stats file)."""
    template, worker = registry.read(settings, "TMAPI_STATS_FILE"), registry.read(settings, "TMAPI_WORKER_ID")
    return template.replace("%(name)s", spider_name).replace("%(worker)s", worker)


def _known(settings: BaseSettings, spider_name: str, stamp: str) -> dict[str, Any]:
    worker = registry.read(settings, "TMAPI_WORKER_ID")
    return {"name": spider_name, "time": stamp, "batch_time": stamp, "batch_id": 1, "worker": worker}


def planned(settings: BaseSettings, spider_name: str, stamp: str) -> list[Output]:
    """The local files this crawl will write, from its completed FEEDS (feeds.configure)."""
    known = {**_known(settings, spider_name, stamp), "host": socket.gethostname(), "pid": os.getpid()}
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
    if registry.read(settings, "TMAPI_SUMMARY"):
        path = summary_file(settings, first_products, spider_name, stamp)
        given = bool(registry.read(settings, "TMAPI_SUMMARY_FILE"))
        found.append(Output("the run summary", path, given or stamp not in path))
    stats = stats_file(settings, spider_name)
    if stats:
        found.append(Output("TMAPI_STATS_FILE", stats, False))
    return found


def check_remote(settings: BaseSettings, spider_name: str, stamp: str) -> None:
    """Check each feed of this crawl in object storage (from its completed FEEDS); OutputError names a bad one."""
    known = _known(settings, spider_name, stamp)
    for uri, options in settings.getdict("FEEDS").items():
        classes = [str(c) for c in ((options or {}).get("item_classes") or ())]
        resolved, _stable = resolve(str(uri), known)
        if storage.is_remote(resolved):
            what = "the failures feed" if feeds.FAILURES in classes else "the products feed"
            try:
                storage.check(resolved, what, settings)
            except storage.StorageError as exc:
                raise OutputError(str(exc)) from None


def cause(exc: OSError, path: str) -> str:
    """The OS's reason, with the file standing where a folder should be when that is it."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):  # EEXIST: os.makedirs met a file where a folder should be
        head = os.path.dirname(os.path.abspath(path))
        while head and head != os.path.dirname(head):
            if os.path.lexists(head) and not os.path.isdir(head):
                return f"{os.strerror(errno.ENOTDIR)}: {head} is a file, not a folder"
            head = os.path.dirname(head)
    return reason


def _make_parents(directory: str, made: list[str]) -> None:
    """os.makedirs, remembering the folders it created (removed if a check fails)."""
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
    """Open the output for appending and, where it is new, write a block and remove it: OSError says why not."""
    _make_parents(os.path.dirname(os.path.abspath(path)), made)
    existed = os.path.lexists(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        if not existed:
            left = memoryview(b"\0" * PROBE_BYTES)
            while left:  # a short write is not an error: the next one says why (a full disk, a size limit)
                left = left[os.write(fd, left) :]
    finally:
        os.close(fd)
        if not existed:
            os.remove(path)


class Lock:
    """An exclusive flock on `<path>.lock` holding the owner's pid; the kernel drops it with the process."""

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
            # The run that held it may have removed the file meanwhile: lock the one now at that path.
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
    """Probe every output and lock those two runs could share (and the answer store, when given);
    on OutputError nothing this check took or created is left."""
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
            # Imported only with a store: every command imports this module at start.
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
