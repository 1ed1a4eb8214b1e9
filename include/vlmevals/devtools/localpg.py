"""A private PostgreSQL server for the default set-up and the tests.

A fresh machine has no database service, so we run the server binaries shipped in the `pgserver` wheel
against a data folder of the project, on 127.0.0.1 and a port of our own. PostgreSQL refuses to run as
root, so as root the server runs as an unprivileged system user (created once, like pgserver does).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SYSTEM_USER = "vlmevals-pg"
SUPERUSER = "evals"
IDLE_IN_TRANSACTION_TIMEOUT = "5min"
"""A session idle inside a transaction this long is ended (and its transaction rolled back). Our and Airflow's
transactions last milliseconds; one left open is abandoned: a process SIGKILLed mid-transaction whose forked
children still hold its socket (a scheduler's LocalExecutor workers) would otherwise keep its row locks for good."""
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def bin_dir() -> Path:
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


class SetupError(RuntimeError):
    """A prerequisite of the private PostgreSQL is missing; the message is one line naming it and the fix."""


def system_tool(name: str, package: str) -> str:
    """The path of an admin tool, looked up in PATH and then the sbin folders (cron's and some CI runners' PATH
    lacks them)."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *SBIN_DIRS])
    found = shutil.which(name, path=path)
    if found is None:
        raise SetupError(
            f"creating the system user {SYSTEM_USER} needs `{name}` (package {package}); install it or set "
            "DATABASE_URL to your own PostgreSQL"
        )
    return found


def _run_as() -> tuple[str, int] | None:
    """PostgreSQL refuses to run as root: as root, run its binaries as an unprivileged system user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        useradd = system_tool("useradd", "passwd")
        subprocess.run(
            [useradd, "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    return SYSTEM_USER, pwd.getpwnam(SYSTEM_USER).pw_gid


def _grant_traverse(path: Path) -> None:
    """Let the unprivileged server user reach `path` (o+x on every parent, as pgserver does)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@dataclass
class LocalPostgres:
    data_dir: Path
    port: int = 55432

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _cmd(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user, group = _run_as() or (None, None)
        cmd = [str(bin_dir() / name), *args]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, user=user, group=group)

    def init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        run_as = _run_as()
        if run_as:
            _grant_traverse(self.data_dir.parent)
            _grant_traverse(bin_dir())
            shutil.chown(self.data_dir, user=SYSTEM_USER)
        self.data_dir.chmod(0o700)
        self._cmd("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-sync")

    def running(self) -> bool:
        return self._cmd("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def start(self) -> None:
        self.init()
        if self.running():
            return
        if port_open(self.port):
            raise RuntimeError(
                f"Port {self.port} on 127.0.0.1 is taken by another server. Set EVALS_PG_PORT to a free port "
                "or point DATABASE_URL at your own PostgreSQL."
            )
        self.log_file.touch()
        if _run_as():
            shutil.chown(self.log_file, user=SYSTEM_USER)
        opts = (
            f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c fsync=off -c max_connections=200 "
            f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT}"
        )
        res = self._cmd(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            opts,
            check=False,
        )
        if res.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {res.stderr or res.stdout}\nServer log: {self.log_file}")
        for _ in range(100):
            if port_open(self.port):
                return
            time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "PG_VERSION").exists() and self.running():
            self._cmd("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", check=False)

    def ensure_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres", driver="postgresql"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
