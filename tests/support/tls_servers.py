"""Weak-TLS test servers on 127.0.0.1 for the TLS posture check (context managers).

- `NginxTls(blocks)`: one Debian nginx master serving many `server` blocks, each on its own
  port, from `NginxBlock` specs (protocols, ciphers, DH params, certificate, OCSP staple, HSTS).
- `TlsliteServer(cert, key, ...)`: tlslite-ng in a subprocess, for what OpenSSL 3 cannot
  serve: RC4, 3DES, SSLv3, DH-512.
- `OpensslSServer(cert, key)`: `openssl s_server -tls1_2 -client_renegotiation`
  (accepts client-initiated renegotiation; single-threaded).
- `dhe_prime_bits(port)`: the DH prime size a server sends, read from its ServerKeyExchange
  (for DH-512, which neither sslyze nor OpenSSL 3 clients accept).

`standard_nginx_blocks(pki, dh)` is the shared set of weak configurations; `make_dh_params()`
makes (and caches per directory) the DH parameter files. tests/install-tls-test-deps.sh
installs nginx, openssl and tlslite-ng.

Ports come from tests/support/ports.py (random, below the kernel's ephemeral range, bindable).
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from cryptography.hazmat.primitives.serialization import load_pem_parameters

from tests.support.ports import HOST, free_port, free_ports

if TYPE_CHECKING:
    from tests.support.tls_certs import ServerCert, TestPki


# OpenSSL configuration that lets weak material load at all (TLS 1.0, RSA-1024, SHA-1, DH-1024).
_REPOSITORY = Path(__file__).resolve().parents[2]

WEAK_OPENSSL_CONF = """\
openssl_conf = apivigil_test_init

[apivigil_test_init]
ssl_conf = apivigil_test_ssl

[apivigil_test_ssl]
system_default = apivigil_test_system_default

[apivigil_test_system_default]
CipherString = DEFAULT:@SECLEVEL=0
"""


# -- ports and processes -------------------------------------------------------------------


def port_accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_ready(
    ports: Sequence[int], process: subprocess.Popen[bytes], timeout: float, describe: str
) -> None:
    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending:
        if process.poll() is not None:
            raise RuntimeError(f"{describe} exited with {process.returncode}")
        if port_accepts(pending[0]):
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"{describe}: port {pending[0]} not accepting after {timeout} s")
        time.sleep(0.05)


def stop_process(
    process: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM, grace: float = 5.0
) -> None:
    """Signal `process` (which leads its own session), then kill its whole group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(first)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
    # Children left behind (nginx workers) share the process group the server led.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_running: list[_Stoppable] = []
_running_lock = threading.Lock()


def track_server(server: _Stoppable) -> None:
    with _running_lock:
        _running.append(server)


def untrack_server(server: _Stoppable) -> None:
    with _running_lock:
        if server in _running:
            _running.remove(server)


@atexit.register
def _stop_leftovers() -> None:
    """Stop servers whose context was never left (e.g. an interrupted test session)."""
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.stop()


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ManagedServer:
    """`with server:` starts it and stops it again, whatever happens inside."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


class ManagedDir:
    """A working directory: the caller's, or a temporary one removed on close."""

    def __init__(self, directory: Path | None, prefix: str) -> None:
        self._own = directory is None
        self.path = Path(tempfile.mkdtemp(prefix=prefix)) if directory is None else directory
        self.path.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        if self._own:
            shutil.rmtree(self.path, ignore_errors=True)


def weak_openssl_conf(directory: Path) -> Path:
    """Write the permissive OpenSSL configuration file into `directory` and return it."""
    path = directory / "openssl-weak.cnf"
    if not path.exists():
        path.write_text(WEAK_OPENSSL_CONF)
    return path


# -- DH parameters ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DhParams:
    """PEM DH parameter files: generated 512/768/1024-bit safe primes, RFC 7919 ffdhe2048."""

    dh512: Path
    dh768: Path
    dh1024: Path
    dh2048: Path


_dh_lock = threading.Lock()
_dh_cache: dict[Path, DhParams] = {}


def make_dh_params(directory: Path | None = None) -> DhParams:
    """Make the DH parameter files once per directory (per process) and reuse them.

    With no directory they go to a per-user cache in the temp dir, kept between runs:
    a 1024-bit safe prime takes 0.1-3 s to find, ffdhe2048 is a named group (instant).
    """
    directory = directory or Path(tempfile.gettempdir()) / f"apivigil-test-dh-{os.getuid()}"
    with _dh_lock:
        if directory in _dh_cache:
            return _dh_cache[directory]
        directory.mkdir(parents=True, exist_ok=True)
        params = DhParams(
            dh512=directory / "dh512.pem",
            dh768=directory / "dh768.pem",
            dh1024=directory / "dh1024.pem",
            dh2048=directory / "ffdhe2048.pem",
        )
        ffdhe2048 = ["genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048"]
        commands = {
            params.dh512: ["dhparam", "512"],
            params.dh768: ["dhparam", "768"],
            params.dh1024: ["dhparam", "1024"],
            params.dh2048: ffdhe2048,
        }
        for path, command in commands.items():
            if path.exists() and b"BEGIN DH PARAMETERS" in path.read_bytes():
                continue
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            args = ["openssl", command[0], "-out", str(partial), *command[1:]]
            subprocess.run(args, check=True, capture_output=True)
            partial.replace(path)  # atomic: concurrent runs never see half a file
        _dh_cache[directory] = params
        return params


def dh_numbers(path: Path) -> tuple[int, int]:
    """(generator, prime) of a PEM DH parameter file, as tlslite's `dhParams` wants them."""
    numbers = load_pem_parameters(path.read_bytes()).parameter_numbers()
    return numbers.g, numbers.p


# -- nginx -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NginxBlock:
    """One nginx `server` block on its own port.

    name: key to look the port up (`nginx.port(name)`).
    cert, key: PEM chain (leaf first) and key.
    protocols: value of ssl_protocols, e.g. "TLSv1" or "TLSv1.2 TLSv1.3".
    ciphers: value of ssl_ciphers (OpenSSL syntax; add ":@SECLEVEL=0" for weak material:
        nginx applies it before loading the certificate).
    dhparam: DH parameter file (enables DHE suites), or None (no DHE).
    stapling_file: DER OCSP response to staple (ssl_stapling_file).
    hsts_max_age: send `Strict-Transport-Security: max-age=N` on every response.
    extra: raw directives added to the block, e.g. ("ssl_ecdh_curve X25519;",).
    """

    name: str
    cert: Path
    key: Path
    protocols: str = "TLSv1.2 TLSv1.3"
    ciphers: str = "ECDHE+AESGCM:ECDHE+CHACHA20"
    dhparam: Path | None = None
    stapling_file: Path | None = None
    hsts_max_age: int | None = None
    prefer_server_ciphers: bool = True
    extra: tuple[str, ...] = ()

    def render(self, port: int) -> str:
        lines = [
            f"listen {HOST}:{port} ssl;",
            "server_name _;",
            f'ssl_certificate "{self.cert}";',
            f'ssl_certificate_key "{self.key}";',
            f"ssl_protocols {self.protocols};",
            f"ssl_ciphers '{self.ciphers}';",
            f"ssl_prefer_server_ciphers {'on' if self.prefer_server_ciphers else 'off'};",
        ]
        if self.dhparam is not None:
            lines.append(f'ssl_dhparam "{self.dhparam}";')
        if self.stapling_file is not None:
            lines += ["ssl_stapling on;", f'ssl_stapling_file "{self.stapling_file}";']
        if self.hsts_max_age is not None:
            lines.append(
                f'add_header Strict-Transport-Security "max-age={self.hsts_max_age}" always;'
            )
        lines += list(self.extra)
        lines.append(f'location / {{ return 200 "{self.name}\\n"; }}')
        body = "\n".join(f"        {line}" for line in lines)
        return f"    server {{  # {self.name}\n{body}\n    }}\n"


class NginxTls(ManagedServer):
    """`with NginxTls(blocks) as nginx:` one nginx master serving every block on 127.0.0.1.

    nginx.port("name") -> that block's port; nginx.ports -> {name: port}.
    directory: where nginx.conf, logs and temp files go (default: a temp dir removed on exit).
    """

    def __init__(
        self,
        blocks: Sequence[NginxBlock],
        directory: Path | None = None,
        *,
        nginx: str | None = None,
        startup_timeout: float = 15.0,
        workers: int = 2,
    ) -> None:
        names = [block.name for block in blocks]
        if len(set(names)) != len(names):
            raise ValueError(f"block names must be unique: {names}")
        if not blocks:
            raise ValueError("no server blocks")
        self.blocks = tuple(blocks)
        self._dir_arg = directory
        self._nginx = nginx or shutil.which("nginx") or "/usr/sbin/nginx"
        self._startup_timeout = startup_timeout
        self._workers = workers
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: ManagedDir | None = None
        self.ports: dict[str, int] = {}

    def port(self, name: str) -> int:
        return self.ports[name]

    @property
    def directory(self) -> Path:
        assert self._workdir is not None, "not started"
        return self._workdir.path

    @property
    def pid(self) -> int | None:
        """The nginx master's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def error_log(self) -> Path:
        return self.directory / "logs" / "error.log"

    def _render(self, ports: dict[str, int]) -> str:
        directory = self.directory
        temp = directory / "temp"
        servers = "".join(block.render(ports[block.name]) for block in self.blocks)
        return (
            "user root;\n"
            f"worker_processes {self._workers};\n"
            f'error_log "{self.error_log}" warn;\n'
            "events { worker_connections 4096; }\n"
            "http {\n"
            "    access_log off;\n"
            "    default_type text/plain;\n"
            "    keepalive_timeout 5s;\n"
            f'    client_body_temp_path "{temp}/body";\n'
            f'    proxy_temp_path "{temp}/proxy";\n'
            f'    fastcgi_temp_path "{temp}/fastcgi";\n'
            f'    uwsgi_temp_path "{temp}/uwsgi";\n'
            f'    scgi_temp_path "{temp}/scgi";\n'
            f"{servers}"
            "}\n"
        )

    def start(self) -> Self:
        if not Path(self._nginx).exists():
            raise FileNotFoundError("nginx not installed (run tests/install-tls-test-deps.sh)")
        self._workdir = ManagedDir(self._dir_arg, "apivigil-nginx-")
        directory = self.directory
        for sub in ("logs", "temp"):
            (directory / sub).mkdir(exist_ok=True)
        env = {**os.environ, "OPENSSL_CONF": str(weak_openssl_conf(directory))}
        last_error: Exception | None = None
        for _attempt in range(3):  # a port taken between the check and nginx's bind: retry
            names = [block.name for block in self.blocks]
            self.ports = dict(zip(names, free_ports(len(names)), strict=True))
            conf = directory / "nginx.conf"
            conf.write_text(self._render(self.ports))
            self.error_log.write_text("")
            with (directory / "logs" / "stderr.log").open("wb") as stderr:
                self._process = subprocess.Popen(
                    [
                        self._nginx, "-p", f"{directory}/", "-c", str(conf),
                        "-e", str(self.error_log),
                        "-g", f'daemon off; master_process on; pid "{directory}/nginx.pid";',
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=stderr,
                    stderr=stderr,
                    env=env,
                    start_new_session=True,
                )  # fmt: skip
            try:
                _wait_ready(
                    list(self.ports.values()), self._process, self._startup_timeout, "nginx"
                )
                track_server(self)
                return self
            except (RuntimeError, TimeoutError) as error:
                stop_process(self._process, signal.SIGTERM, grace=2)
                log = tail(self.error_log) + tail(directory / "logs" / "stderr.log")
                last_error = RuntimeError(f"{error}\n{log}")
                if "Address already in use" not in log:
                    break
        self._workdir.close()
        raise RuntimeError(f"nginx did not start: {last_error}")

    def stop(self) -> None:
        untrack_server(self)
        if self._process is not None:
            stop_process(self._process, signal.SIGQUIT, grace=5)  # SIGQUIT: graceful
            self._process = None
        if self._workdir is not None:
            self._workdir.close()
            self._workdir = None


# Cipher strings for the standard blocks (OpenSSL names).
TLS10_CIPHERS = "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:@SECLEVEL=0"
NULL_CIPHERS = "ECDHE-RSA-NULL-SHA:NULL-SHA256:NULL-SHA:@SECLEVEL=0"
DHE_CIPHERS = "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0"
STATIC_RSA_CIPHERS = "AES128-GCM-SHA256:AES256-GCM-SHA384:@SECLEVEL=1"
CBC_CIPHERS = (
    "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA:"
    "ECDHE-RSA-AES256-SHA:@SECLEVEL=1"
)
MODERN_CIPHERS = (
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"
)
WEAK_CERT_CIPHERS = MODERN_CIPHERS + ":@SECLEVEL=0"


def standard_nginx_blocks(pki: TestPki, dh: DhParams) -> list[NginxBlock]:
    """The shared weak (and one good) configurations, one block each.

    Names: good, tls10, tls11, null, dh1024, dh2048, static_rsa, cbc, rsa1024, sha1_intermediate,
    ocsp_revoked, expired, not_yet_valid, wrong_host, self_signed, unknown_root,
    missing_intermediate, long_lifetime, no_hsts.
    """
    good = pki.good()
    revoked = pki.ocsp_stapled("revoked")

    def block(
        name: str, protocols: str, ciphers: str, cert: ServerCert | None = None, **options: Any
    ) -> NginxBlock:
        cert = cert or good
        return NginxBlock(
            name, cert.chain, cert.key, protocols=protocols, ciphers=ciphers, **options
        )

    modern = ("TLSv1.2 TLSv1.3", MODERN_CIPHERS)
    weak_cert = ("TLSv1.2 TLSv1.3", WEAK_CERT_CIPHERS)  # @SECLEVEL=0: RSA-1024, SHA-1 load
    return [
        block("good", *modern, hsts_max_age=31536000),
        block("no_hsts", *modern),
        block("tls10", "TLSv1", TLS10_CIPHERS),
        block("tls11", "TLSv1.1", TLS10_CIPHERS),
        block("null", "TLSv1.2", NULL_CIPHERS),
        block("dh1024", "TLSv1.2", DHE_CIPHERS, dhparam=dh.dh1024),
        block("dh2048", "TLSv1.2", DHE_CIPHERS, dhparam=dh.dh2048),
        block("static_rsa", "TLSv1.2", STATIC_RSA_CIPHERS),
        block("cbc", "TLSv1.2", CBC_CIPHERS),
        block("rsa1024", *weak_cert, pki.rsa1024()),
        block("sha1_intermediate", *weak_cert, pki.sha1_intermediate()),
        block("ocsp_revoked", *modern, revoked, stapling_file=revoked.ocsp_response),
        block("expired", *modern, pki.expired()),
        block("not_yet_valid", *modern, pki.not_yet_valid()),
        block("wrong_host", *modern, pki.wrong_host()),
        block("self_signed", *modern, pki.self_signed()),
        block("unknown_root", *modern, pki.unknown_root()),
        block("missing_intermediate", *modern, pki.missing_intermediate()),
        block("long_lifetime", *modern, pki.long_lifetime()),
    ]


# -- tlslite-ng ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsliteConfig:
    """HandshakeSettings for a tlslite-ng server (see tlslite.handshakesettings).

    versions: (3, 0) SSLv3 ... (3, 3) TLS 1.2.
    cipher_names: e.g. ("rc4",), ("3des",), ("aes128", "aes256").
    key_exchange_names: e.g. ("rsa",), ("dhe_rsa",), ("ecdhe_rsa", "rsa").
    dh_params: (generator, prime) for DHE (see dh_numbers()); dh_groups: FFDHE groups offered
        by name ((): none, so that dh_params is used even to clients sending supported_groups).
    extra: other HandshakeSettings attributes as (name, JSON value) pairs.
    """

    versions: tuple[tuple[int, int], ...] = ((3, 3),)
    cipher_names: tuple[str, ...] = ("aes128gcm", "aes256gcm", "aes128", "aes256")
    key_exchange_names: tuple[str, ...] = ("ecdhe_rsa", "rsa")
    mac_names: tuple[str, ...] = ("sha", "sha256", "sha384", "aead", "md5")
    dh_params: tuple[int, int] | None = None
    dh_groups: tuple[str, ...] | None = None
    extra: tuple[tuple[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "versions": [list(version) for version in self.versions],
            "cipher_names": list(self.cipher_names),
            "key_exchange_names": list(self.key_exchange_names),
            "mac_names": list(self.mac_names),
            "dh_params": list(self.dh_params) if self.dh_params else None,
            "dh_groups": list(self.dh_groups) if self.dh_groups is not None else None,
            "extra": [list(item) for item in self.extra],
        }


# Recipes (PEERS.md): what OpenSSL 3 cannot serve.
TLSLITE_RC4 = TlsliteConfig(versions=((3, 1), (3, 2), (3, 3)), cipher_names=("rc4",))
TLSLITE_3DES = TlsliteConfig(versions=((3, 1), (3, 2), (3, 3)), cipher_names=("3des",))
TLSLITE_SSL3 = TlsliteConfig(versions=((3, 0),), cipher_names=("aes128", "aes256", "3des"))


def tlslite_dh(dh_params: tuple[int, int]) -> TlsliteConfig:
    """DHE-RSA only, TLS 1.0-1.2, with the given (generator, prime), e.g. dh_numbers(dh.dh512).

    sslyze 6.3 sees DH-768 (ephemeral_key.size == 768) but cannot connect at all to a DH-512
    server (ERROR_NO_CONNECTIVITY), even when plain RSA key exchange is also offered.
    """
    return TlsliteConfig(
        versions=((3, 1), (3, 2), (3, 3)),
        cipher_names=("aes128gcm", "aes256gcm", "aes128", "aes256"),
        key_exchange_names=("dhe_rsa",),
        dh_params=dh_params,
        dh_groups=(),
    )


class TlsliteServer(ManagedServer):
    """`with TlsliteServer(cert, key, TLSLITE_RC4) as server:` -> server.port on 127.0.0.1.

    Runs tlslite-ng in a child Python process (`python -m tests.support.tls_servers
    --tlslite CONFIG`), a thread per connection, so the scanner's parallel connections and odd
    clients cannot stall or kill it; the child exits when this process closes its stdin or dies.
    """

    def __init__(
        self,
        cert: Path,
        key: Path,
        config: TlsliteConfig | None = None,
        *,
        port: int | None = None,
        startup_timeout: float = 20.0,
        log: Path | None = None,
    ) -> None:
        self.cert = cert
        self.key = key
        self.config = config or TlsliteConfig()
        self.port = port or 0  # 0: a free port is picked on start
        self._startup_timeout = startup_timeout
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    def start(self) -> Self:
        self.port = self.port or free_port()
        spec = {
            "host": HOST,
            "port": self.port,
            "cert": str(self.cert.resolve()),
            "key": str(self.key.resolve()),
            **self.config.to_json(),
        }
        self._log_file = (
            self._log.open("wb") if self._log is not None else open(os.devnull, "wb")  # noqa: SIM115
        )
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.tls_servers", "--tlslite", json.dumps(spec)],
            cwd=_REPOSITORY,  # `python -m` imports from here
            stdin=subprocess.PIPE,
            stdout=self._log_file,
            stderr=self._log_file,
            start_new_session=True,
        )
        try:
            _wait_ready([self.port], self._process, self._startup_timeout, "tlslite server")
        except BaseException:
            self.stop()
            raise
        track_server(self)
        return self

    def stop(self) -> None:
        untrack_server(self)
        if self._process is not None:
            if self._process.stdin is not None:
                with contextlib.suppress(OSError):
                    self._process.stdin.close()
            stop_process(self._process, signal.SIGTERM, grace=3)
            self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


_HTTP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
    b"Connection: close\r\n\r\nok\n"
)


def _tlslite_main(spec: dict[str, Any]) -> None:
    """Child process body: serve `spec` with tlslite-ng until stdin closes or SIGTERM."""
    from tlslite.api import (  # type: ignore[import-untyped]  # noqa: PLC0415
        HandshakeSettings,
        TLSConnection,
        X509CertChain,
        parsePEMKey,
    )

    settings = HandshakeSettings()
    versions = [tuple(version) for version in spec["versions"]]
    settings.minVersion = min(versions)
    settings.maxVersion = max(versions)
    settings.versions = sorted(versions, reverse=True)
    settings.cipherNames = spec["cipher_names"]
    settings.keyExchangeNames = spec["key_exchange_names"]
    settings.macNames = spec["mac_names"]
    settings.minKeySize = 512
    if spec["dh_params"]:
        settings.dhParams = tuple(spec["dh_params"])
    if spec["dh_groups"] is not None:
        settings.dhGroups = spec["dh_groups"]
    for name, value in spec["extra"]:
        setattr(settings, name, value)
    settings = settings.validate()

    chain = X509CertChain()
    chain.parsePemList(Path(spec["cert"]).read_text())
    private_key = parsePEMKey(Path(spec["key"]).read_text(), private=True)

    def handle(connection: socket.socket) -> None:
        connection.settimeout(10)
        tls = TLSConnection(connection)
        try:
            tls.handshakeServer(certChain=chain, privateKey=private_key, settings=settings)
            with contextlib.suppress(Exception):
                tls.read(max=65536)
                tls.write(_HTTP_RESPONSE)
            with contextlib.suppress(Exception):
                tls.close()
        except Exception:  # scanners hang up mid-handshake and send odd hellos: keep serving
            pass
        finally:
            with contextlib.suppress(OSError):
                connection.close()

    def watch_parent() -> None:
        sys.stdin.buffer.read()  # returns when the parent closes the pipe or dies
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((spec["host"], spec["port"]))
    listener.listen(128)
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:  # e.g. out of file descriptors: back off, keep serving
            time.sleep(0.05)
            continue
        threading.Thread(target=handle, args=(connection,), daemon=True).start()


# -- openssl s_server --------------------------------------------------------------------------


class OpensslSServer(ManagedServer):
    """`with OpensslSServer(cert, key) as server:` openssl s_server on 127.0.0.1:server.port.

    Default options: -tls1_2 -client_renegotiation (TLS 1.2 only, honours client-initiated
    renegotiation). s_server handles one connection at a time. Without -www it answers no
    HTTP but relays data to its log; stdin is held open (EOF on stdin would stop it).
    With -www (an HTTP status page) it sleeps 1 s whenever a read would block, so sslyze's
    10 client renegotiations take 9 s and parallel scan connections time out (recorded as
    rejected cipher suites or errors): add "-www" to `options` only to serve HTTP.
    """

    def __init__(
        self,
        cert: Path,
        key: Path,
        *,
        options: Sequence[str] = ("-tls1_2", "-client_renegotiation"),
        port: int | None = None,
        startup_timeout: float = 10.0,
        directory: Path | None = None,
        openssl_conf: Path | None = None,
    ) -> None:
        self.cert = cert
        self.key = key
        self.options = tuple(options)
        self.port = port or 0  # 0: a free port is picked on start
        self._startup_timeout = startup_timeout
        self._dir_arg = directory
        self._openssl_conf = openssl_conf
        self._workdir: ManagedDir | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        assert self._workdir is not None, "not started"
        return self._workdir.path / "s_server.log"

    def start(self) -> Self:
        self.port = self.port or free_port()
        self._workdir = ManagedDir(self._dir_arg, "apivigil-s_server-")
        # s_server sends only the first certificate of -cert: the rest goes in -cert_chain.
        pems = self.cert.read_text().split("-----END CERTIFICATE-----")
        blocks = [pem.strip() + "\n-----END CERTIFICATE-----\n" for pem in pems if pem.strip()]
        leaf = self._workdir.path / "leaf.pem"
        leaf.write_text(blocks[0])
        command = [
            "openssl", "s_server", "-accept", f"{HOST}:{self.port}",
            "-cert", str(leaf), "-key", str(self.key), *self.options,
        ]  # fmt: skip
        if len(blocks) > 1:
            chain = self._workdir.path / "chain.pem"
            chain.write_text("".join(blocks[1:]))
            command += ["-cert_chain", str(chain)]
        env = dict(os.environ)
        if self._openssl_conf is not None:
            env["OPENSSL_CONF"] = str(self._openssl_conf)
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,  # kept open: without -www, EOF on stdin stops s_server
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        try:
            self._wait_accept()
        except BaseException:
            self.stop()
            raise
        track_server(self)
        return self

    def _wait_accept(self) -> None:
        """Ready when s_server prints ACCEPT (no probe connection: it is single-threaded)."""
        assert self._process is not None
        deadline = time.monotonic() + self._startup_timeout
        while b"ACCEPT" not in self.log.read_bytes():
            if self._process.poll() is not None:
                raise RuntimeError(f"openssl s_server exited: {tail(self.log)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"openssl s_server not ready: {tail(self.log)}")
            time.sleep(0.05)

    def stop(self) -> None:
        untrack_server(self)
        if self._process is not None:
            stop_process(self._process, signal.SIGTERM, grace=3)
            self._process = None
        if self._workdir is not None:
            self._workdir.close()
            self._workdir = None


# -- raw DHE probe -----------------------------------------------------------------------------

# TLS_DHE_RSA_WITH_AES_128_CBC_SHA, _AES_256_CBC_SHA, _AES_128_GCM_SHA256, _AES_256_GCM_SHA384
_DHE_SUITES = bytes.fromhex("00330039009e009f")
# signature_algorithms: rsa_pkcs1_sha256, rsa_pkcs1_sha1
_SIGNATURE_ALGORITHMS = bytes.fromhex("000d0006000404010201")


def _client_hello_dhe() -> bytes:
    body = (
        b"\x03\x03"
        + os.urandom(32)
        + b"\x00"
        + len(_DHE_SUITES).to_bytes(2, "big")
        + _DHE_SUITES
        + b"\x01\x00"
        + len(_SIGNATURE_ALGORITHMS).to_bytes(2, "big")
        + _SIGNATURE_ALGORITHMS
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


def _read_exact(connection: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return data


def dhe_prime_bits(port: int, host: str = HOST, timeout: float = 10.0) -> int:
    """Offer only DHE-RSA suites (TLS 1.2) and return the bit size of the DH prime the server
    sends in its ServerKeyExchange. Needs no client-side key size policy, so it sees DH-512."""
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(_client_hello_dhe())
        handshake = b""
        while True:
            header = _read_exact(connection, 5)
            payload = _read_exact(connection, int.from_bytes(header[3:5], "big"))
            if header[0] == 21:  # alert
                raise ConnectionError(f"server sent alert {payload.hex()}")
            if header[0] != 22:
                continue
            handshake += payload
            while len(handshake) >= 4:
                length = int.from_bytes(handshake[1:4], "big")
                if len(handshake) < 4 + length:
                    break
                kind, body = handshake[0], handshake[4 : 4 + length]
                handshake = handshake[4 + length :]
                if kind == 12:  # ServerKeyExchange: dh_p, dh_g, dh_Ys, signature
                    prime_length = int.from_bytes(body[0:2], "big")
                    return int.from_bytes(body[2 : 2 + prime_length], "big").bit_length()
                if kind == 14:  # ServerHelloDone without a key exchange: not DHE
                    raise ValueError("server sent no ServerKeyExchange")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--tlslite":
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        _tlslite_main(json.loads(sys.argv[2]))
    else:
        raise SystemExit("usage: python -m tests.support.tls_servers --tlslite JSON")
