"""A private PostgreSQL cluster in the services folder."""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from localdev.errors import ServiceError
from localdev.probes import STARTUP_TIMEOUT_SECONDS, is_port_free
from localdev.processes import (
    install_debian_packages,
    is_process_running,
    is_root,
    log_tail,
    read_pid,
    run,
    stop_process,
)
from localdev.urls import PostgresTarget

# Django 6.0 supports PostgreSQL 15 and newer.
MIN_POSTGRES_MAJOR = 15
POSTGRES_INSTALL_HINT = (
    f"install PostgreSQL {MIN_POSTGRES_MAJOR}+ server binaries "
    "(Debian: apt-get install postgresql) or set DATABASE_URL to a reachable server"
)


class PrivatePostgres:
    """A PostgreSQL cluster in SERVICES_DIR/postgres, run as the `postgres` user when root.

    Layout: data/ is the cluster, postgres.log the server log, and the unix
    socket lives in the folder itself. The port is not stored in the cluster:
    it is passed at every start, and postmaster.pid records it while running.
    """

    def __init__(self, root: Path) -> None:
        self.root = root / "postgres"
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.pid_file = self.data / "postmaster.pid"

    def running_pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        if pid is not None and is_process_running(pid, "postgres"):
            return pid
        return None

    def running_port(self) -> int | None:
        """Return the port from postmaster.pid (its fourth line) while the server runs."""
        if self.running_pid() is None:
            return None
        try:
            return int(self.pid_file.read_text().splitlines()[3])
        except (OSError, IndexError, ValueError):
            return None

    def _as_server_user(self, command: list[str]) -> list[str]:
        # initdb and postgres exit with an error when started as root.
        return ["runuser", "-u", "postgres", "--", *command] if is_root() else command

    def _prepare_folder(self) -> None:
        """Create the folder and, as root, give it to the postgres user.

        When the postgres user cannot reach SERVICES_DIR (a checkout under
        /root, say), the folder becomes a symbolic link to one in the system's
        temporary folder. All commands use the resolved paths, so that user
        never needs to pass through SERVICES_DIR.
        """
        if not is_root():
            self.root.mkdir(parents=True, exist_ok=True)
            return
        if shutil.which("runuser") is None:
            raise ServiceError("runuser is missing: it runs PostgreSQL as the postgres user")
        self.root.parent.mkdir(parents=True, exist_ok=True)
        if not self.root.exists() and not server_user_can_access(self.root.parent, "-x"):
            self._link_to_reachable_folder()
        self.root.mkdir(exist_ok=True)
        try:
            shutil.chown(self.root.resolve(), "postgres", "postgres")
            if self.data.exists():
                shutil.chown(self.data.resolve(), "postgres", "postgres")
        except LookupError:
            raise ServiceError(
                "initdb and postgres exit with an error as root, and there is no 'postgres' user: "
                "create one (useradd --system postgres) or run as a normal user"
            ) from None
        if not server_user_can_access(self.root.resolve(), "-w"):
            raise ServiceError(
                f"the postgres user cannot write to {self.root.resolve()}: make every parent "
                "folder traversable (chmod o+x) or set SERVICES_DIR to a folder it can reach"
            )

    def _link_to_reachable_folder(self) -> None:
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        target = Path(tempfile.gettempdir()) / f"campaign-dispatcher-postgres-{digest}"
        target.mkdir(mode=0o755, exist_ok=True)
        self.root.symlink_to(target, target_is_directory=True)
        print(
            f"PostgreSQL: the postgres user cannot reach {self.root.parent}, so the cluster "
            f"lives in {target} (linked from {self.root}); it is lost if that folder is cleared"
        )

    def start(self, target: PostgresTarget) -> int:
        """Create the cluster if needed, start it on the target's port and return its PID."""
        port = target.address.port
        running_port = self.running_port()
        if running_port is not None:
            raise ServiceError(
                f"the private PostgreSQL in {self.data} already runs on port {running_port}, "
                f"but DATABASE_URL asks for port {port}: run `bin/services stop` "
                f"or set DATABASE_URL to port {running_port}"
            )
        if not is_port_free(target.address.listen_host, port):
            raise ServiceError(
                f"port {port} on {target.address.listen_host} is in use, but no PostgreSQL "
                "answers there: free the port or choose another one in DATABASE_URL"
            )
        bin_dir = find_postgres_bin_dir(self.data)
        self._prepare_folder()

        if not (self.data / "PG_VERSION").exists():
            self._create_cluster(bin_dir, target.user)
        self._start_server(bin_dir, target.address.listen_host, port)
        pid = self.running_pid()
        if pid is None:
            raise ServiceError(
                f"PostgreSQL did not stay up; last lines of {self.log}:\n{log_tail(self.log)}"
            )
        return pid

    def _create_cluster(self, bin_dir: Path, superuser: str) -> None:
        if self.data.exists() and any(self.data.iterdir()):
            raise ServiceError(
                f"{self.data} is neither empty nor a PostgreSQL cluster: remove it and run again"
            )
        print(f"PostgreSQL: creating a private cluster in {self.data}")
        data = self.data.resolve()
        command = [str(bin_dir / "initdb"), "--pgdata", str(data), "--auth=trust"]
        command += ["--username", superuser, "--encoding=UTF8", "--no-locale", "--no-sync"]
        # Run in a folder that the postgres user can read, because the caller's cwd may not be one.
        run(self._as_server_user(command), "initdb", cwd=self.root.resolve())

    def _start_server(self, bin_dir: Path, listen_host: str, port: int) -> None:
        print(f"PostgreSQL: starting the private server on {listen_host}:{port}")
        # pg_ctl hands --options to the server through a shell, hence the quoting.
        server_options = ["-p", str(port), "-c", f"listen_addresses={listen_host}"]
        server_options += ["-k", str(self.root.resolve())]
        command = [str(bin_dir / "pg_ctl"), "start", "--pgdata", str(self.data.resolve())]
        command += ["--log", str(self.log.resolve())]
        command += ["--wait", f"--timeout={STARTUP_TIMEOUT_SECONDS}"]
        command += ["--options", shlex.join(server_options)]
        try:
            run(self._as_server_user(command), "pg_ctl start", cwd=self.root.resolve())
        except ServiceError as error:
            raise ServiceError(
                f"{error}\nlast lines of {self.log}:\n{log_tail(self.log)}"
            ) from None

    def stop(self) -> bool:
        """Stop the server with a fast shutdown (SIGINT); return False if none was running."""
        pid = self.running_pid()
        if pid is None:
            return False
        print(f"PostgreSQL: stopping the private server (PID {pid})")
        # SIGINT is PostgreSQL's fast shutdown, SIGQUIT its immediate shutdown.
        if not stop_process(pid, "postgres", signal.SIGINT, signal.SIGQUIT):
            raise ServiceError(f"PostgreSQL (PID {pid}) did not exit after SIGINT and SIGQUIT")
        return True


def server_user_can_access(folder: Path, test_flag: str) -> bool:
    """Tell whether the postgres user passes `test <test_flag> folder` (-x, -w)."""
    command = ["runuser", "-u", "postgres", "--", "test", test_flag, str(folder)]
    return subprocess.run(command, check=False).returncode == 0


def postgres_major_version(bin_dir: Path) -> int | None:
    try:
        output = run([str(bin_dir / "postgres"), "--version"], "postgres --version")
    except ServiceError:
        return None
    match = re.search(r"\b(\d+)(?:\.\d+)?", output)
    return int(match.group(1)) if match else None


def candidate_postgres_bin_dirs() -> list[Path]:
    """Return folders with initdb, pg_ctl and postgres; Debian's highest version comes first."""
    folders = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        folders.append(Path(on_path).resolve().parent)
    return [
        folder
        for folder in folders
        if all((folder / name).exists() for name in ("initdb", "pg_ctl", "postgres"))
    ]


def find_postgres_bin_dir(data: Path, install: bool = True) -> Path:
    """Find server binaries for the cluster in `data`, installing them on Debian when missing.

    An existing cluster needs binaries of its own major version; a new one gets
    the newest version found.
    """
    cluster_version_file = data / "PG_VERSION"
    cluster_version = (
        int(cluster_version_file.read_text().strip()) if cluster_version_file.exists() else None
    )
    for folder in candidate_postgres_bin_dirs():
        version = postgres_major_version(folder)
        if version is None:
            continue
        if cluster_version is not None and version == cluster_version:
            return folder
        if cluster_version is None and version >= MIN_POSTGRES_MAJOR:
            return folder
    if cluster_version is not None:
        raise ServiceError(
            f"the private cluster in {data} was made by PostgreSQL {cluster_version}, whose server "
            f"binaries are not installed: install them, or remove {data} to start afresh"
        )
    if install:
        install_debian_packages(["postgresql"], POSTGRES_INSTALL_HINT)
        return find_postgres_bin_dir(data, install=False)
    raise ServiceError(POSTGRES_INSTALL_HINT)
