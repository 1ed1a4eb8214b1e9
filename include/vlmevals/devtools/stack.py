"""The local stack: our PostgreSQL, Airflow's components on LocalExecutor, and the environment they share.

`vlmevals up` / `vlmevals down` drive it; the tests use the same environment builder so what they run is
what a user runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from vlmevals.core.settings import PROJECT_ROOT, Settings
from vlmevals.devtools import stack_settings as ss
from vlmevals.devtools.airflow_api import wait_for_dag
from vlmevals.devtools.localpg import LocalPostgres, port_open
from vlmevals.devtools.process_groups import GroupLog
from vlmevals.devtools.stack_settings import DERIVED_VAR, StackSettings, get_stack_settings, user_environ
from vlmevals.vlmevalkit.runner import kill_groups

log = logging.getLogger(__name__)

__all__ = ["COMPONENTS", "FAB_USERS", "USERS", "Stack", "StackSettings", "get_stack_settings", "wait_for_dag"]

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
USERS = {"admin": "admin", "op": "op", "viewer": "viewer"}
"""SimpleAuthManager's users (name → password; each user's role is its name)."""
FAB_USERS = {"admin": "Admin", "op": "Op", "user": "User", "viewer": "Viewer"}
"""FAB's users with `EVALS_AUTH_MANAGER=fab` (name → FAB role; the password is the name), one per built-in role."""
NOTES_USER = "op"
"""The Airflow user whose login (connection `evals_airflow_api`) eval_run uses to write its DAG run notes."""
PATH_VARS = {"VLMEVAL_OUTPUTS": "vlmeval_outputs", "LMUData": "lmu_data", "EVALS_MODELS_DIR": "models_dir"}
"""Service paths the stack hands its processes: yours from the environment, else derived by `Settings`."""


def service_paths(environ: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The paths (VLMEVAL_ROOT included when set) and the names of those derived rather than given.

    Derived by `core.settings.Settings`, the one rule: `VLMEVAL_OUTPUTS` defaults to `$VLMEVAL_ROOT/outputs`
    when `VLMEVAL_ROOT` is set, else `.local/outputs`."""
    given = {k: environ[k] for k in ("VLMEVAL_ROOT", *PATH_VARS) if environ.get(k)}
    defaults = {k: Settings.model_fields[f].default for k, f in PATH_VARS.items()}
    s = Settings.model_validate({**defaults, "VLMEVAL_ROOT": None, "VLMEVAL_OUTPUTS": None, **given})
    out = {k: str(getattr(s, f)) for k, f in PATH_VARS.items()}
    if s.vlmeval_root is not None:
        out["VLMEVAL_ROOT"] = str(s.vlmeval_root)
    return out, [k for k in PATH_VARS if k not in given]


@dataclass
class Stack:
    settings: StackSettings = field(default_factory=get_stack_settings)
    # added to every component's environment, restarts included (the tests: the judge double's reserved address,
    # which the workers' settings read once, when each component starts)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.settings.home.resolve()

    @property
    def pg(self) -> LocalPostgres:
        return LocalPostgres(self.home / "pgdata", port=self.settings.pg_port)

    @property
    def own_postgres(self) -> bool:
        return self.settings.database_url is None

    @property
    def database_url(self) -> str:
        return self.settings.database_url or self.pg.url("evals")

    @property
    def airflow_db_url(self) -> str:
        return self.settings.airflow_db_url or self.pg.url("airflow", driver="postgresql+psycopg2")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    def _secret(self, name: str) -> str:
        """Generated once per stack home, so that every process and every restart signs alike."""
        path = self.home / "airflow" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def env(self) -> dict[str, str]:
        """Environment for every Airflow process and CLI call of this stack."""
        return self._env_and_derived()[0]

    def _env_and_derived(self) -> tuple[dict[str, str], list[str]]:
        airflow_home = self.home / "airflow"
        airflow_home.mkdir(parents=True, exist_ok=True)
        conn_url = self.database_url.replace("postgresql+psycopg://", "postgresql://")
        env = {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__EXECUTOR": self.settings.executor,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": str(self.settings.parallelism),
            **self._auth_env(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.airflow_db_url,
            "AIRFLOW__API__PORT": str(self.settings.api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt_secret"),
            **ss.AIRFLOW_TUNING,
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
            "AIRFLOW_CONN_EVALS_DB": conn_url,
            "DATABASE_URL": self.database_url,
            "AIRFLOW_CONN_EVALS_AIRFLOW_API": f"http://{NOTES_USER}:{USERS[NOTES_USER]}@127.0.0.1:{self.settings.api_port}",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        paths, derived = service_paths(user_environ())
        env.update(paths)
        env.update(self.extra_env)
        if self.own_postgres:
            derived.append("DATABASE_URL")
        if self.settings.airflow_db_url is None:
            derived.append("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        if self.settings.executor == "CeleryExecutor":
            env.update(self._celery_env())
        return env, derived

    def _auth_env(self) -> dict[str, str]:
        """SimpleAuthManager (Airflow's default) with USERS, or FAB's auth manager (users made by `migrate`).

        Named in both cases: a shell that sourced a FAB stack's env.sh must not carry FAB into a simple one."""
        manager = {"AIRFLOW__CORE__AUTH_MANAGER": ss.AUTH_MANAGERS[self.settings.auth_manager]}
        if self.settings.auth_manager == "fab":
            return {**manager, "AIRFLOW__API__SECRET_KEY": self._secret("api_secret_key")}  # FAB's login session
        pw = self.home / "airflow" / "passwords.json"
        if not pw.exists():
            pw.write_text(json.dumps(USERS))
        return {
            **manager,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{u}" for u in USERS),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw),
        }

    def _celery_env(self) -> dict[str, str]:
        """Broker, result backend (Airflow's metadata DB) and worker names that tell workers on one host apart."""
        if not self.settings.redis_url:
            raise RuntimeError("CeleryExecutor needs a broker: set REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
        return {
            "AIRFLOW__CELERY__BROKER_URL": self.settings.redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.airflow_db_url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "vlmevals.gpu.leases.worker_hostname",
        }

    def shell_env(self) -> dict[str, str]:
        """`env()` plus the `EVALS_STACK_DERIVED` mark of what the stack derived (see stack_settings)."""
        env, derived = self._env_and_derived()
        where = {  # so that `vlmevals …` in a shell that sourced env.sh addresses this stack, not the defaults
            "EVALS_HOME": str(self.home),
            "EVALS_PG_PORT": str(self.settings.pg_port),
            "EVALS_AIRFLOW_PORT": str(self.settings.api_port),
            "EVALS_AUTH_MANAGER": self.settings.auth_manager,
        }
        return {**env, **where, DERIVED_VAR: json.dumps({k: env[k] for k in derived}, sort_keys=True)}

    def write_env_file(self) -> Path:
        """`source .local/env.sh` gives a shell the stack's environment (for airflow CLI calls)."""
        path = self.home / "env.sh"
        env = self.shell_env()
        lines = [f"export {k}={_sh_quote(v)}" for k, v in sorted(env.items()) if k != "PATH"]
        path.write_text("\n".join(lines) + f"\nexport PATH={json.dumps(str(Path(sys.executable).parent))}:$PATH\n")
        return path

    # --- processes -----------------------------------------------------------------------------------------
    def _pidfile(self, name: str) -> Path:
        return self.home / "run" / f"{name}.pid"

    def _groups(self, name: str) -> GroupLog:
        return GroupLog(self.home / "run" / f"{name}.groups")

    def pid(self, name: str) -> int | None:
        p = self._pidfile(name)
        if not p.exists():
            return None
        try:
            pid = int(p.read_text())
            os.kill(pid, 0)
            return pid
        except (ValueError, ProcessLookupError, PermissionError):
            p.unlink(missing_ok=True)
            return None

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env={**os.environ, **self.env()},
            check=check,
            capture_output=True,
            text=True,
        )

    def start_database(self) -> None:
        if self.own_postgres:
            self.pg.start()
            self.pg.ensure_database("evals")
            self.pg.ensure_database("airflow")

    def migrate(self) -> None:
        from vlmevals.db.engine import upgrade

        res = self.airflow("db", "migrate", check=False)
        if res.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{res.stderr[-3000:]}")
        if self.settings.auth_manager == "fab":
            self.create_fab_users()
        upgrade(self.database_url)

    def create_fab_users(self) -> None:
        """FAB_USERS in FAB's tables (`airflow db migrate` creates those: it runs every installed provider's DB
        manager); a user that exists is left as it is."""
        for name, role in FAB_USERS.items():
            res = self.airflow(
                *("users", "create", "--username", name, "--password", name, "--role", role),
                *("--firstname", name, "--lastname", "evals", "--email", f"{name}@evals.invalid"),
                check=False,
            )
            if res.returncode != 0:
                raise RuntimeError(
                    f"airflow users create {name} failed (EVALS_AUTH_MANAGER=fab needs the `fab` extra: "
                    f"pip install -e '.[fab]' -c constraints.txt):\n{res.stderr[-3000:]}"
                )

    def start_component(
        self, name: str, args: tuple[str, ...] | None = None, extra_env: dict[str, str] | None = None
    ) -> int:
        """Start `airflow {args or name}` in the background (e.g. name "worker-gpu", args ("celery", "worker", …))."""
        env = {**self.env(), **(extra_env or {})}
        if (pid := self.pid(name)) is not None:
            if self._env_stamp(name).exists() and self._env_stamp(name).read_text() == _digest(env):
                return pid
            self.stop((name,), database=False)  # started with another environment: yours wins, so restart it
        self.reap(name)
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._pidfile(name).parent.mkdir(parents=True, exist_ok=True)
        with (logs / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "airflow", *(args or (name,))],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=PROJECT_ROOT,
            )
        self._pidfile(name).write_text(str(proc.pid))
        self._groups(name).add(proc.pid)  # start_new_session: its group id is its pid
        self._env_stamp(name).write_text(_digest(env))
        return proc.pid

    def reap(self, name: str, grace_s: float = 10) -> set[int]:
        """End what survives of a dead component's earlier process groups before it starts again.

        A component killed alone (SIGKILL, the OOM killer) leaves its forked children running: a scheduler's
        LocalExecutor workers still hold its database socket, so PostgreSQL keeps the dead scheduler's
        transaction open with its row locks on `slot_pool`, and the new scheduler skips its critical section
        on every loop (queues nothing, logs nothing). Ending those children closes the socket; PostgreSQL
        then rolls the transaction back. Tasks they were running are reset by the new scheduler and retried.
        """
        survivors = self._groups(name).live()
        if survivors:
            log.warning(
                "airflow %s: ending what is left of its last start (process groups %s)", name, sorted(survivors)
            )
            kill_groups(survivors, grace_s)
            self._groups(name).clear()
        return survivors

    def _env_stamp(self, name: str) -> Path:
        return self.home / "run" / f"{name}.env-sha256"

    def start_components(self, components: tuple[str, ...] = COMPONENTS) -> None:
        if "api-server" in components and self.pid("api-server") is None and port_open(self.settings.api_port):
            raise RuntimeError(f"port {self.settings.api_port} is taken; set EVALS_AIRFLOW_PORT to a free port")
        for name in components:
            self.start_component(name)

    def wait_healthy(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            for name in COMPONENTS:
                if self._pidfile(name).exists() and self.pid(name) is None:
                    log = (self.home / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"airflow {name} exited:\n{log}")
            try:
                r = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=3)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as err:
                last = str(err)
            time.sleep(1)
        raise TimeoutError(f"Airflow api-server not healthy after {timeout_s:.0f} s: {last}")

    def stop(self, components: tuple[str, ...] = COMPONENTS, database: bool = True, grace_s: float = 20) -> list[str]:
        """End every process group each component was started in (process_groups), SIGKILL after `grace_s`."""
        pids = {name: self.pid(name) for name in components}
        stopped = [name for name, pid in pids.items() if pid is not None]
        groups = {g for name in components for g in self._groups(name).live()}
        kill_groups(groups | {pid for pid in pids.values() if pid is not None}, grace_s)
        for name in components:
            self._pidfile(name).unlink(missing_ok=True)
            self._groups(name).clear()
        if database and self.own_postgres and self.pg.running():
            self.pg.stop()
            stopped.append("postgresql")
        return stopped

    def token(self, username: str = "admin", password: str | None = None) -> str:
        r = httpx.post(
            f"{self.api_url}/auth/token",
            json={"username": username, "password": password or USERS.get(username, username)},
            timeout=30,
        )
        r.raise_for_status()
        return str(r.json()["access_token"])


def _digest(env: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()


def _sh_quote(value: str) -> str:
    """Single-quoted for sh: nothing inside is expanded (a JSON value or a password with `$` stays intact)."""
    return "'" + value.replace("'", "'\\''") + "'"
