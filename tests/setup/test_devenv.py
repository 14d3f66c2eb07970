"""The variables that bin/dev exports, from `python -m localdev.devenv PORT` as bin/dev runs it.

Each test runs the module in a fresh process with an environment of its own
and a `.env` in a temporary folder, so the settings read nothing of the
developer's `.env` or shell.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def devenv(
    tmp_path: Path, port: str, dotenv: str = "", **environment: str
) -> subprocess.CompletedProcess[str]:
    dotenv_path = tmp_path / ".env"
    dotenv_path.write_text("DEBUG=true\n" + dotenv)
    return subprocess.run(
        [sys.executable, "-m", "localdev.devenv", port],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", "DOTENV_PATH": str(dotenv_path), **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def exports(tmp_path: Path, port: str, dotenv: str = "", **environment: str) -> dict[str, str]:
    result = devenv(tmp_path, port, dotenv, **environment)
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def test_site_url_follows_port(tmp_path: Path) -> None:
    assert exports(tmp_path, "8001")["SITE_URL"] == "http://127.0.0.1:8001"


def test_site_url_in_environment_kept(tmp_path: Path) -> None:
    result = exports(tmp_path, "8001", SITE_URL="https://campaigns.example.com")

    assert "SITE_URL" not in result


def test_site_url_in_dotenv_kept(tmp_path: Path) -> None:
    result = exports(tmp_path, "8001", "SITE_URL=https://campaigns.example.com\n")

    assert "SITE_URL" not in result


def test_queues_and_flower_port_from_dotenv(tmp_path: Path) -> None:
    result = exports(tmp_path, "8000", "DISPATCH_CONTROL_QUEUE=control-b\nIMPORT_QUEUE=imports-b\n")

    assert result["DISPATCH_CONTROL_QUEUE"] == "control-b"
    assert result["IMPORT_QUEUE"] == "imports-b"
    assert result["FLOWER_PORT"] == "5555"


def test_email_follows_moved_sink(tmp_path: Path) -> None:
    # bin/setup writes EMAIL_PORT=1025 into .env, and the moved sink wins over it.
    dotenv = "EMAIL_HOST=127.0.0.1\nEMAIL_PORT=1025\n"

    result = exports(tmp_path, "8000", dotenv, SMTP_SINK_PORT="1026")

    assert result["EMAIL_PORT"] == "1026"


@pytest.mark.parametrize(
    ("dotenv", "environment"),
    [
        # An EMAIL_PORT in the environment is kept.
        ("EMAIL_HOST=127.0.0.1\n", {"EMAIL_PORT": "2525"}),
        # Email to another host does not follow the sink.
        ("EMAIL_HOST=smtp.example.com\nEMAIL_PORT=587\n", {}),
    ],
)
def test_email_port_left_alone(tmp_path: Path, dotenv: str, environment: dict[str, str]) -> None:
    result = exports(tmp_path, "8000", dotenv, SMTP_SINK_PORT="1026", **environment)

    assert "EMAIL_PORT" not in result


@pytest.mark.parametrize("port", ["8a", "", "70000", "0"])
def test_invalid_port_rejected(tmp_path: Path, port: str) -> None:
    result = devenv(tmp_path, port)

    assert result.returncode == 2
    assert result.stdout == ""
    assert "PORT" in result.stderr
