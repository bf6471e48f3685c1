"""Start `scrapy` commands as forks of one warm process: each is a real process running the real
command line (checks, signals, exit codes, stdout, stderr), without a Python start and a
Scrapy import of its own. `start_scrapy` and `run_scrapy` are the tests' side.

`python -m tests.scrapy_server SOCKET` imports Scrapy, Twisted and the project (no reactor
installed, no settings read) and listens on the Unix socket SOCKET; with `redis` after SOCKET,
the Redis libraries and the project's distributed modules too, for the commands given a Redis
(workers, `scrapy seed`, `scrapy job`), which the other server must not have imported. A client connects once per
command and sends one message: JSON (argv, cwd, env) with the command's stdin, stdout and
stderr as file descriptors. The server forks a child that runs `scrapy ARGV` as
`python -m scrapy` would, answers `{"pid": ...}`, and `{"returncode": ...}` when the child
has ended (negative: killed by that signal, as subprocess reports it). It exits when its
stdin closes (the test process is gone).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import pkgutil
import platform
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, NoReturn

REPO = Path(__file__).resolve().parent.parent

# What every command imports, imported once here. Not the project's settings (read from the
# environment when imported: each child reads its own) nor a reactor (each child installs its own).
WARM_MODULES = (
    "scrapy.cmdline",
    "scrapy.crawler",
    "scrapy.core.engine",
    "scrapy.core.downloader.handlers.http11",
    "scrapy.extensions.feedexport",
    "scrapy.pipelines",
    "twisted.internet.asyncioreactor",
    "tmapi_spiders.commands.crawl",
    "tmapi_spiders.addons",
    "tmapi_spiders.api.download",
    "tmapi_spiders.api.schema",
    "tmapi_spiders.crawl.exporters",
    "tmapi_spiders.crawl.middlewares",
    "tmapi_spiders.crawl.pipelines",
    "tmapi_spiders.jobs.spending",
    "tmapi_spiders.limits.middleware",
    "tmapi_spiders.sandbox.addon",
    "tmapi_spiders.spiders.image_search",
    "tmapi_spiders.spreadsheets.exporter",
)
# Every module of these: the command line imports every command to list them, a crawl the
# project's extensions.
WARM_PACKAGES = ("scrapy.commands", "tmapi_spiders.commands", "tmapi_spiders.extensions")
# The Redis libraries too: a single-process crawl must be seen not to import them, nor openpyxl
# (tests/probes.py). The server for the commands given a Redis imports them.
NOT_WARM = ("tmapi_spiders.settings", "twisted.internet.reactor", "openpyxl")
REDIS_MODULES = ("redis", "scrapy_redis")
REDIS_PACKAGES = ("tmapi_spiders.distributed",)
MAX_MESSAGE = 1 << 20


def scrapy_components() -> set[str]:
    """The modules of the components Scrapy's default settings name (middlewares, extensions,
    download handlers, feed storages and exporters, queues...): every crawl loads most of them."""
    from scrapy.settings import default_settings

    paths: set[str] = set()
    for name in dir(default_settings):
        value = getattr(default_settings, name)
        for path in [*value, *value.values()] if isinstance(value, dict) else [value]:
            if isinstance(path, str) and path.startswith("scrapy.") and "." in path:
                paths.add(path.rpartition(".")[0])
    return paths


def warm_up(redis: bool = False) -> None:
    """Import what the commands import (with `redis`, what a command given a Redis imports too)."""
    for name in WARM_MODULES + (REDIS_MODULES if redis else ()):
        __import__(name)
    for package in WARM_PACKAGES + (REDIS_PACKAGES if redis else ()):
        path = importlib.import_module(package).__path__
        for module in pkgutil.walk_packages(path, f"{package}."):
            importlib.import_module(module.name)
    for name in scrapy_components():
        try:
            __import__(name)
        except ImportError:
            pass  # an optional library (h2, boto...) not installed: the command finds it missing itself
    for name in NOT_WARM + (() if redis else REDIS_MODULES):
        assert name not in sys.modules, f"{name} imported while warming up: each command must import it itself"
    platform.platform()  # Scrapy's first log line asks for it; Python keeps the answer (uname -p, a process)


def child(request: dict[str, Any], fds: list[int]) -> NoReturn:
    """In the fork: become `python -m scrapy ARGV` started in CWD with ENV. Scrapy ends with
    sys.exit, which ends this process through Python's own exit (atexit, flushed streams,
    tracebacks, KeyboardInterrupt as SIGINT) exactly as it ends `python -m scrapy`."""
    for number, fd in enumerate(fds):
        os.dup2(fd, number)
    for fd in set(fds):
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path.insert(0, request["cwd"])  # as `python -m` does
    sys.argv = ["scrapy", *request["argv"]]
    from scrapy.cmdline import execute

    execute()
    sys.exit(0)


def start(listener: socket.socket, children: dict[int, socket.socket], selector: selectors.BaseSelector) -> None:
    conn, _ = listener.accept()
    message, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, 3)
    request = json.loads(message)
    pid = os.fork()
    if pid == 0:  # the server's own descriptors are not the command's
        selector.close()
        for sock in (listener, conn, *children.values()):
            sock.close()
        child(request, fds)
    for fd in fds:
        os.close(fd)
    conn.sendall(json.dumps({"pid": pid}).encode())
    children[pid] = conn


def reap(children: dict[int, socket.socket]) -> None:
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            try:
                conn.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode())
            except OSError:
                pass  # the client went away
            conn.close()


def serve(path: str, redis: bool) -> None:
    warm_up(redis)
    # What is imported stays out of the garbage collector's reach: a child's collections (and its
    # exit) would otherwise walk every object warmed here, copying the pages the fork shares.
    gc.collect()
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(16)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "start")
    selector.register(sys.stdin, selectors.EVENT_READ, "stdin")
    print("ready", flush=True)
    children: dict[int, socket.socket] = {}
    while True:
        for key, _ in selector.select(timeout=0.02):
            if key.data == "start":
                start(listener, children, selector)
            elif not sys.stdin.readline():
                return
        reap(children)


# -- the tests' side ----------------------------------------------------------------------------


class ScrapyProcess:
    """A command the server forked, with the part of subprocess.Popen's API the tests use."""

    def __init__(self, args: list[str], conn: socket.socket, pid: int, stdout: IO[Any] | None, stderr: IO[Any] | None):
        self.args, self.pid, self.returncode = args, pid, None
        self.stdin, self.stdout, self.stderr = None, stdout, stderr
        self._conn = conn
        self._outputs: dict[str, Any] = {}
        self._readers: list[threading.Thread] = []

    def _read_end(self) -> None:
        answer = self._conn.recv(4096)
        self._conn.close()
        if not answer:
            raise RuntimeError(f"the scrapy server went away before pid {self.pid} ended")
        self.returncode = json.loads(answer)["returncode"]

    def poll(self) -> int | None:
        if self.returncode is None:
            self._conn.setblocking(False)
            try:
                self._read_end()
            except BlockingIOError:
                pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._conn.settimeout(timeout)
            try:
                self._read_end()
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout) from None
        assert self.returncode is not None
        return self.returncode

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        """Read the piped outputs to their end and wait, as Popen.communicate (no input)."""
        assert input is None
        if not self._readers:
            for name in ("stdout", "stderr"):
                pipe = getattr(self, name)
                if pipe is not None:
                    reader = threading.Thread(target=lambda n=name, p=pipe: self._outputs.update({n: p.read()}))
                    reader.daemon = True
                    reader.start()
                    self._readers.append(reader)
        deadline = None if timeout is None else time.monotonic() + timeout
        for reader in self._readers:
            reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout)
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self._outputs.get("stdout"), self._outputs.get("stderr")

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass  # ended meanwhile

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Server:
    """This test process's `python -m tests.scrapy_server` (with `redis`: its Redis one), started
    when first needed."""

    def __init__(self, redis: bool = False) -> None:
        self.redis = redis
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[str] | None = None
        self.path = ""

    def socket_path(self) -> str:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.path = os.path.join(tempfile.mkdtemp(prefix="scrapy-server-"), "socket")
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "tests.scrapy_server", self.path, *(["redis"] if self.redis else [])],
                    cwd=REPO,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert self.proc.stdout is not None
                assert self.proc.stdout.readline() == "ready\n", "the scrapy server did not start"
            return self.path


SERVERS = {False: Server(), True: Server(redis=True)}  # by whether the command is given a Redis


def given_a_redis(args: list[str], env: dict[str, str]) -> bool:
    """Whether the command is given a Redis (`-s REDIS_URL=...`, REDIS_SENTINELS, the environment's
    REDIS_URL): it will import the Redis libraries."""
    return bool(env.get("REDIS_URL")) or any(arg.startswith(("REDIS_URL=", "REDIS_SENTINELS=")) for arg in args)


def _python_startup(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("PYTHON")}


def start_scrapy(
    args: list[str],
    env: dict[str, str],
    cwd: Path = REPO,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    text: bool = True,
) -> ScrapyProcess | subprocess.Popen[Any]:
    """`python -m scrapy ARGS` started in CWD with ENV, as subprocess.Popen would start it (the
    same meaning of stdin, stdout, stderr and text). A plain subprocess where ENV changes what
    Python reads as it starts (PYTHONPATH...), which a fork would not see."""
    if _python_startup(env) != _python_startup(dict(os.environ)):
        cmd = [sys.executable, "-m", "scrapy", *args]
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=stderr, text=text)
    mine: list[int] = []  # descriptors to close once the child has its own
    pipes: dict[str, IO[Any]] = {}

    def descriptor(name: str, spec: Any, inherited: int) -> int:
        if spec is None:
            return inherited
        if spec == subprocess.DEVNULL:
            mine.append(os.open(os.devnull, os.O_RDWR))
            return mine[-1]
        if spec == subprocess.PIPE:
            read, write = os.pipe()
            mine.append(write)
            pipes[name] = open(read, "r" if text else "rb")
            return write
        return spec if isinstance(spec, int) else spec.fileno()

    fds = [descriptor("stdin", stdin, 0), descriptor("stdout", stdout, 1)]
    fds.append(fds[1] if stderr == subprocess.STDOUT else descriptor("stderr", stderr, 2))
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(SERVERS[given_a_redis(args, env)].socket_path())
        socket.send_fds(conn, [json.dumps({"argv": args, "cwd": str(cwd), "env": env}).encode()], fds)
        pid = json.loads(conn.recv(4096))["pid"]
    finally:
        for fd in mine:
            os.close(fd)
    return ScrapyProcess(["scrapy", *args], conn, pid, pipes.get("stdout"), pipes.get("stderr"))


def run_scrapy(
    args: list[str], env: dict[str, str], cwd: Path = REPO, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m scrapy ARGS` run to its end, as subprocess.run(capture_output=True, text=True)
    runs it: the exit code, stdout and stderr (TimeoutExpired, the command killed, past TIMEOUT)."""
    with tempfile.TemporaryDirectory(prefix="scrapy-run-") as tmp:
        out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
        with open(out, "w") as stdout, open(err, "w") as stderr:
            proc = start_scrapy(args, env, cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise subprocess.TimeoutExpired(proc.args, timeout, out.read_text(), err.read_text()) from None
        return subprocess.CompletedProcess(proc.args, code, out.read_text(), err.read_text())


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2:] == ["redis"])
