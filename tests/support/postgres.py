"""A real PostgreSQL server for the tests, from Debian's `postgresql` package.

`PostgresServer` runs `initdb` into a temporary directory of its own and starts `postgres` on a free
port on 127.0.0.1, with its socket in that directory and fsync off (a test database need not
survive a power cut). initdb refuses to run as root, and the tests run as root in CI, so the
cluster belongs to an unprivileged user (`postgres`, created by the Debian package, else `nobody`)
and every server process runs as that user (setpriv, which execs: signals reach postgres itself).
The superuser `ci_gate` logs in over TCP with a password (scram), so the URLs the tests use carry a
password, as a deployment's would.

A pytest killed outright (SIGKILL, an OOM kill, a CI job cancelled) runs no finaliser, so the server
must not rely on `close()`: it gets the parent-death signal (`setpriv --pdeathsig SIGINT`, a fast
shutdown when the process that started it dies), and the base directory records who started it
(`owner`: pid and start time), so the next `PostgresServer` stops any server whose starter is gone
(`stop_stale_servers`: the postmaster's pid from its `postmaster.pid`, checked against the process's
command line) and removes its directory.

    with PostgresServer() as server:
        url = server.create_database()      # postgresql://ci_gate:...@127.0.0.1:PORT/test_...
        server.restart()                     # the same port, data kept (a database restart mid-run)
        server.stop(); server.start()
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from itertools import pairwise
from pathlib import Path
from types import TracebackType

from tests.support.tools import MissingTool

SUPERUSER = "ci_gate"
"""The cluster's superuser: the tests connect as this role."""
BASE_PREFIX = "ci-gate-postgres-"
OWNER_FILE = "owner"
"""In the base directory: `PID START_TIME` of the process that started the server."""
STOP_WAIT_SECONDS = 30.0


def _process_state(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks since boot) of a process; None when there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (OSError, ValueError):
        return None
    return fields[0], fields[19]


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, dead but not yet reaped, does not)."""
    state = _process_state(pid)
    return state is not None and state[0] not in ("Z", "X")


def _owner_gone(base: Path) -> bool:
    """Whether the process that started the server in `base` has ended (False when `base` names none: a
    directory of a fixture from before owners were recorded, or one being set up right now)."""
    try:
        pid, started = (base / OWNER_FILE).read_text().split()
    except (OSError, ValueError):
        return False
    state = _process_state(int(pid))
    return state is None or state[0] in ("Z", "X") or state[1] != started  # a reused pid is another process


def _postmaster(base: Path) -> int | None:
    """The pid of the server running on `base`'s data directory, if one does (its command line says so)."""
    data_dir = base / "data"
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except (OSError, ValueError):
        return None
    running = argv[0].endswith("/postgres") and any(pair == ("-D", str(data_dir)) for pair in pairwise(argv))
    return pid if running and _alive(pid) else None


def stop_stale_servers(root: Path | None = None) -> list[Path]:
    """Stop the servers whose starter has died (it was killed before it could stop them) and remove their
    base directories; the servers of running processes are left alone. The directories removed."""
    removed = []
    for base in sorted(Path(root or tempfile.gettempdir()).glob(BASE_PREFIX + "*")):
        if not _owner_gone(base):
            continue
        pid = _postmaster(base)
        if pid is not None:
            os.kill(pid, signal.SIGINT)  # a fast shutdown: clients disconnected, files closed
            deadline = time.monotonic() + STOP_WAIT_SECONDS
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
        removed.append(base)
    return removed


def postgres_bin_dir() -> Path:
    """The directory holding initdb and postgres: `pg_config --bindir`, else the newest
    /usr/lib/postgresql/*/bin (Debian keeps the server binaries off PATH)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        completed = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if completed.returncode == 0 and completed.stdout.strip():
            candidates.append(Path(completed.stdout.strip()))

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(part) for part in Path(path).parent.name.split(".") if part.isdigit())

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
            return candidate
    raise MissingTool("postgres")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user the cluster runs as when the tests run as root; None when they do not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise MissingTool("postgres")  # no unprivileged user to run initdb as


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory; `url()` / `create_database()` give URLs."""

    def __init__(self, max_connections: int = 400, die_with_parent: bool = True) -> None:
        stop_stale_servers()
        self.bin_dir = postgres_bin_dir()
        self.password = secrets.token_urlsafe(16)
        self.port = _free_port()
        self.max_connections = max_connections
        self._user = _server_user()
        # Not under pytest's tmp dirs: those are 0700 root, which the server's user cannot enter.
        self.base = Path(tempfile.mkdtemp(prefix=BASE_PREFIX))
        own = _process_state(os.getpid())
        (self.base / OWNER_FILE).write_text(f"{os.getpid()} {own[1] if own else 0}\n")
        self.die_with_parent = die_with_parent
        """The server gets SIGINT when the thread that started it ends (False: a test's stale server)."""
        self.data_dir = self.base / "data"
        self.socket_dir = self.base / "socket"
        self.log_path = self.base / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._initialised = False

    # --- lifecycle --------------------------------------------------------------------------------

    def _as_server_user(self, argv: list[str], long_lived: bool = False) -> list[str]:
        """`argv` as the server's user; a long-lived process (the server) also dies with its starter, when
        that is the main thread (the parent-death signal follows the thread that started it)."""
        options = []
        if self._user is not None:
            options += [f"--reuid={self._user.pw_uid}", f"--regid={self._user.pw_gid}", "--init-groups"]
        if long_lived and self.die_with_parent and threading.current_thread() is threading.main_thread():
            options.append("--pdeathsig=SIGINT")
        if not options or shutil.which("setpriv") is None:
            if self._user is not None:
                raise MissingTool("setpriv")
            return argv
        return ["setpriv", *options, *argv]

    def _initdb(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        password_file = self.base / "password"
        password_file.write_text(self.password + "\n")
        if self._user is not None:
            os.chmod(self.base, 0o700)
            for path in (self.base, self.socket_dir, password_file):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        completed = subprocess.run(
            self._as_server_user([str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                                  "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}",
                                  "--encoding=UTF8", "--locale=C", "--no-sync"]),
            capture_output=True, text=True, check=False, cwd=self.base)
        password_file.unlink()
        if completed.returncode != 0:
            raise RuntimeError(f"initdb failed: {completed.stderr.strip() or completed.stdout.strip()}")
        self._initialised = True

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (initialising the cluster the first time) and wait until it accepts logins."""
        if self._process is not None and self._process.poll() is None:
            return
        if not self._initialised:
            self._initdb()
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the server's lifetime)
        if self._user is not None:
            os.chown(self.log_path, self._user.pw_uid, self._user.pw_gid)
        self._process = subprocess.Popen(
            self._as_server_user([
                str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=off", "-c", "full_page_writes=off",
                "-c", f"max_connections={self.max_connections}", "-c", "shared_buffers=32MB",
                "-c", "logging_collector=off"], long_lived=True),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.base)
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self._process.returncode}: {self.log_tail()}")
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not accept logins within {timeout:g} s: "
                                       f"{self.log_tail()}") from None
                time.sleep(0.1)

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Stop the server: `fast` (SIGINT: clients disconnected, a clean shutdown) or `immediate`
        (SIGQUIT: as after a crash; the next start recovers from the WAL)."""
        process = self._process
        if process is None or process.poll() is not None:
            self._process = None
            return
        process.send_signal(signal.SIGINT if mode == "fast" else signal.SIGQUIT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._process = None

    def restart(self, mode: str = "fast", down_seconds: float = 0.0) -> None:
        """Stop, stay down `down_seconds`, start again on the same port with the same data."""
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()

    @property
    def pid(self) -> int | None:
        """The postmaster's pid (setpriv execs it) while it runs."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    # --- databases --------------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        """`postgresql://ci_gate:PASSWORD@127.0.0.1:PORT/DATABASE` (TCP, password login)."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (a fresh name unless given); its URL."""
        import psycopg

        name = name or f"test_{secrets.token_hex(6)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
