"""Start-up checks of config.settings, each run in a fresh Python process.

The settings read the environment once, at import, so every case needs its own
interpreter. The child gets this environment minus SECRET_KEY and DEBUG, and a
DOTENV_PATH that names a missing file unless the test writes one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

SETUP = "import django; django.setup()"
PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.DEBUG, settings.SECRET_KEY)"
)


def start_django(tmp_path: Path, code: str = SETUP, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a new interpreter with `config.settings` and the extra `env`."""
    child_env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"SECRET_KEY", "DEBUG", "DOTENV_PATH"}
    }
    child_env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    child_env["DOTENV_PATH"] = str(tmp_path / "missing.env")
    child_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def last_line(stderr: str) -> str:
    """Return the final line of a traceback: the exception and its message."""
    return stderr.strip().splitlines()[-1]


def test_missing_secret_key_fails(tmp_path: Path) -> None:
    result = start_django(tmp_path)

    assert result.returncode != 0
    error = last_line(result.stderr)
    assert error.startswith("django.core.exceptions.ImproperlyConfigured:")
    assert "SECRET_KEY is not set" in error
    assert "DEBUG=true" in error


def test_missing_secret_key_fails_with_debug_off(tmp_path: Path) -> None:
    result = start_django(tmp_path, DEBUG="false")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in last_line(result.stderr)


def test_debug_starts_without_secret_key(tmp_path: Path) -> None:
    # tests/config/test_env.py covers the other spellings of true.
    result = start_django(tmp_path, code=PRINT_SETTINGS, DEBUG="true")

    assert result.returncode == 0, result.stderr
    shown_debug, secret_key = result.stdout.split()
    assert shown_debug == "True"
    # The development key is a fixed placeholder that DEBUG alone unlocks.
    assert "insecure" in secret_key


def test_secret_key_starts_without_debug(tmp_path: Path) -> None:
    result = start_django(tmp_path, code=PRINT_SETTINGS, SECRET_KEY="from-the-environment")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "from-the-environment"]


def test_invalid_debug_fails_clearly(tmp_path: Path) -> None:
    result = start_django(tmp_path, DEBUG="maybe", SECRET_KEY="set")

    assert result.returncode != 0
    error = last_line(result.stderr)
    assert error.startswith("ValueError:")
    assert "DEBUG='maybe' is not a boolean" in error
    assert "true/false" in error


def test_dotenv_file_supplies_secret_key(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# local settings\nSECRET_KEY='from-the-file'\n", encoding="utf-8")

    result = start_django(tmp_path, code=PRINT_SETTINGS, DOTENV_PATH=str(dotenv))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "from-the-file"]


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SECRET_KEY=from-the-file\nDEBUG=maybe\n", encoding="utf-8")

    result = start_django(
        tmp_path,
        code=PRINT_SETTINGS,
        DOTENV_PATH=str(dotenv),
        SECRET_KEY="from-the-environment",
        DEBUG="false",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "from-the-environment"]


def test_bad_dotenv_line_fails_with_line_number(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SECRET_KEY=set\n\nDEBUG true\n", encoding="utf-8")

    result = start_django(tmp_path, DOTENV_PATH=str(dotenv))

    assert result.returncode != 0
    error = last_line(result.stderr)
    assert error.startswith("ValueError:")
    assert f"{dotenv}:3: expected KEY=value" in error


def test_env_example_names_every_setting() -> None:
    # Each variable that config/settings.py reads with an env_* helper must
    # appear in .env.example, which the README calls the full list.
    settings_source = (PROJECT_ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env_[a-z]+\(\s*"([A-Z0-9_]+)"', settings_source))
    example = (PROJECT_ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, flags=re.MULTILINE))

    assert read, "no env_* calls found in config/settings.py"
    assert sorted(read - listed) == []
