"""Run commands, install packages and signal the servers started from pid files."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from localdev.errors import ServiceError

STOP_TIMEOUT_SECONDS = 30


def is_root() -> bool:
    return os.geteuid() == 0


def read_pid(path: Path) -> int | None:
    """Return the PID on the first line of a pid file, or None when there is none."""
    try:
        first_line = path.read_text(encoding="utf-8").splitlines()[0]
        return int(first_line.strip())
    except (OSError, IndexError, ValueError):
        return None


def is_process_running(pid: int, program: str) -> bool:
    """Tell whether `pid` is alive and, where /proc exists, runs `program`.

    Checking the command line keeps a stale pid file whose PID was reused by
    another process from making us signal that process.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    if status.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return program in command_line


def stop_process(pid: int, program: str, first_signal: int, last_signal: int) -> bool:
    """Send `first_signal`, wait for the exit, then send `last_signal`; return True if it exited."""
    for signal_number, timeout in ((first_signal, STOP_TIMEOUT_SECONDS), (last_signal, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not is_process_running(pid, program):
                return True
            time.sleep(0.1)
    return not is_process_running(pid, program)


def run(
    command: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    """Run `command`, returning its output; raise ServiceError with that output on failure."""
    try:
        completed = subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            check=False,
        )
    except OSError as error:
        raise ServiceError(f"{what} failed: {error}") from None
    if completed.returncode != 0:
        raise ServiceError(
            f"{what} failed (exit {completed.returncode}): {shlex.join(command)}\n"
            f"{completed.stdout.strip()}"
        )
    return completed.stdout


def install_debian_packages(packages: list[str], hint: str) -> None:
    """Install `packages` with apt-get when running as root on Debian or Ubuntu, else raise."""
    if not (is_root() and Path("/etc/debian_version").exists() and shutil.which("apt-get")):
        raise ServiceError(hint)
    print(f"Installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update"], "apt-get update", env)
    run(["apt-get", "install", "-y", *packages], f"apt-get install {' '.join(packages)}", env)


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
