"""Read and update the .env file that the settings fall back on.

The parsing rules match config/env.py: `KEY=value` lines, an optional
`export ` prefix, matching quotes around the value removed, and the first
line of a key wins.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Address and port of `manage.py smtp_sink` in development (Procfile.dev's default).
DEV_SMTP_SINK_HOST = "127.0.0.1"
DEV_SMTP_SINK_PORT = 1025


def dotenv_path() -> Path:
    return Path(os.environ.get("DOTENV_PATH") or PROJECT_ROOT / ".env")


def _parse_dotenv_line(raw: str) -> tuple[str, str] | None:
    """Parse one line with the rules of config/env.py; return None for blanks and comments."""
    line = raw.strip()
    if not line or line.startswith("#"):
        return None
    key, separator, value = line.partition("=")
    key = key.strip().removeprefix("export ").strip()
    if not separator or not key:
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key, value


def read_dotenv(path: Path) -> dict[str, str]:
    """Return the variables in `path`; the first line for a key wins, as in config/env.py."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        parsed = _parse_dotenv_line(raw)
        if parsed is not None:
            values.setdefault(*parsed)
    return values


def _write_atomically(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    temporary.chmod(mode)
    temporary.replace(path)


def update_dotenv(path: Path, values: dict[str, str]) -> None:
    """Set `values` in the .env file at `path`, leaving every other line as it is.

    The first line of each key is replaced in place and later lines of the same
    key are dropped, because readers ignore them. Keys not yet in the file are
    appended. A new file is created readable by its owner only, because it
    usually ends up holding SECRET_KEY.
    """
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    written: set[str] = set()
    output: list[str] = []
    for raw in lines:
        parsed = _parse_dotenv_line(raw)
        key = parsed[0] if parsed else None
        if key in values:
            if key not in written:
                output.append(f"{key}={values[key]}")
                written.add(key)
            continue
        output.append(raw)
    for key, value in values.items():
        if key not in written:
            output.append(f"{key}={value}")
    _write_atomically(path, "\n".join(output) + "\n", mode)


def init_dotenv(path: Path) -> list[str]:
    """Create the .env file for development, or give an existing one a SECRET_KEY.

    A new file gets DEBUG=true, a random SECRET_KEY, and EMAIL_HOST and
    EMAIL_PORT of the development SMTP sink. An existing file keeps
    all its lines, and gets a SECRET_KEY only when it has none. Returns the
    keys that were added.
    """
    secret_key = secrets.token_urlsafe(50)
    if not path.exists():
        text = (
            "# Local development settings, written by bin/setup. The environment wins\n"
            "# over this file. bin/services rewrites DATABASE_URL and REDIS_URL when it\n"
            "# starts private servers.\n"
            "DEBUG=true\n"
            f"SECRET_KEY={secret_key}\n"
            "# Email goes to the SMTP sink that bin/dev starts (manage.py smtp_sink).\n"
            f"EMAIL_HOST={DEV_SMTP_SINK_HOST}\n"
            f"EMAIL_PORT={DEV_SMTP_SINK_PORT}\n"
        )
        _write_atomically(path, text, 0o600)
        return ["DEBUG", "SECRET_KEY", "EMAIL_HOST", "EMAIL_PORT"]
    if "SECRET_KEY" in read_dotenv(path):
        return []
    update_dotenv(path, {"SECRET_KEY": secret_key})
    return ["SECRET_KEY"]


@dataclass(frozen=True)
class Setting:
    value: str
    source: str  # "environment", the .env path, or "default"

    @property
    def is_default(self) -> bool:
        return self.source == "default"


def read_setting(name: str, default: str) -> Setting:
    if name in os.environ:
        return Setting(os.environ[name], "environment")
    path = dotenv_path()
    from_file = read_dotenv(path)
    if name in from_file:
        return Setting(from_file[name], str(path))
    return Setting(default, "default")
