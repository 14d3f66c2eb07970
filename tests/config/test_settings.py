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

import pytest

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
    read = set(re.findall(r'env_[a-z_]+\(\s*"([A-Z0-9_]+)"', settings_source))
    example = (PROJECT_ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, flags=re.MULTILINE))

    assert read, "no env_* calls found in config/settings.py"
    assert sorted(read - listed) == []


# Each value would leave a started campaign stuck in processing, or make the
# engine or the live stream spin, so each must stop the process at startup.
OUT_OF_RANGE = [
    ("DELIVERY_CONCURRENCY", "0", "at least 1"),
    ("DELIVERY_CONCURRENCY", "-1", "at least 1"),
    ("DISPATCH_BATCH_SIZE", "0", "at least 1"),
    ("DISPATCH_BATCH_SIZE", "-3", "at least 1"),
    ("DISPATCH_WORKERS_PER_CAMPAIGN", "0", "at least 1"),
    ("DISPATCH_FLUSH_SIZE", "0", "at least 1"),
    ("DISPATCH_FLUSH_INTERVAL_SECONDS", "0", "above 0"),
    ("DELIVERY_LEASE_SECONDS", "0", "above 0"),
    ("DELIVERY_LEASE_SECONDS", "nan", "not a finite number"),
    ("DISPATCH_SWEEP_INTERVAL_SECONDS", "-5", "above 0"),
    ("DELIVERY_MAX_ATTEMPTS", "0", "at least 1"),
    ("DELIVERY_RETRY_BASE_SECONDS", "-1", "at least 0.0"),
    ("DELIVERY_RETRY_MAX_SECONDS", "-1", "at least 0.0"),
    ("DELIVERY_RATE_LIMIT_PER_SECOND", "-1", "at least 0.0"),
    ("DELIVERY_RATE_LIMIT_PER_SECOND", "inf", "not a finite number"),
    ("DELIVERY_RATE_LIMIT_BURST", "-1", "at least 0"),
    ("DELIVERY_FAILURE_RATE", "2", "from 0.0 to 1.0"),
    ("DELIVERY_FAILURE_RATE", "-0.1", "from 0.0 to 1.0"),
    ("AUTO_PAUSE_FAILURE_RATE", "1.5", "from 0.0 to 1.0"),
    ("AUTO_PAUSE_FAILURE_COUNT", "-1", "at least 0"),
    ("AUTO_PAUSE_MIN_PROCESSED", "-1", "at least 0"),
    ("DELIVERY_DELAY_MIN_SECONDS", "-1", "at least 0.0"),
    ("DELIVERY_DELAY_MAX_SECONDS", "-1", "at least 0.0"),
    ("LIVE_UPDATES_KEEPALIVE_SECONDS", "0", "above 0"),
    # 0 would let every viewer render the header on every change.
    ("LIVE_HEADER_INTERVAL_SECONDS", "0", "from 0.001 to 60.0"),
    ("LIVE_HEADER_INTERVAL_SECONDS", "-0.2", "from 0.001 to 60.0"),
    ("LIVE_HEADER_INTERVAL_SECONDS", "61", "from 0.001 to 60.0"),
    ("LIVE_EVENT_INTERVAL_SECONDS", "-0.1", "from 0.0 to 5.0"),
    ("LIVE_EVENT_INTERVAL_SECONDS", "6", "from 0.0 to 5.0"),
    ("LIVE_EVENT_INTERVAL_SECONDS", "nan", "not a finite number"),
    ("LIVE_STREAM_MAX_ENTRIES", "9", "at least 10"),
    ("LIVE_STREAM_MAX_ENTRIES", "0", "at least 10"),
    ("LIVE_STREAM_TTL_SECONDS", "59", "at least 60"),
    ("LIVE_RATE_HISTORY_SECONDS", "60", "at least 120"),
    ("LIVE_THROUGHPUT_WINDOW_SECONDS", "0", "from 1 to 60"),
    ("LIVE_THROUGHPUT_WINDOW_SECONDS", "61", "from 1 to 60"),
    ("MAX_RECIPIENT_ROWS", "0", "at least 1"),
    # Smaller bodies would reject ordinary forms.
    ("DATA_UPLOAD_MAX_MEMORY_SIZE", "65535", "at least 65536"),
    ("DATA_UPLOAD_MAX_NUMBER_FIELDS", "0", "at least 1"),
    ("CONN_MAX_AGE", "-1", "at least 0"),
]


@pytest.mark.parametrize(("name", "value", "allowed"), OUT_OF_RANGE)
def test_out_of_range_setting_fails(tmp_path: Path, name: str, value: str, allowed: str) -> None:
    result = start_django(tmp_path, DEBUG="true", **{name: value})

    assert result.returncode != 0
    error = last_line(result.stderr)
    assert error.startswith("ValueError:")
    assert f"{name}={value!r}" in error
    assert allowed in error


@pytest.mark.parametrize(
    ("low_name", "low", "high_name", "high"),
    [
        ("DELIVERY_RETRY_BASE_SECONDS", "10", "DELIVERY_RETRY_MAX_SECONDS", "5"),
        ("DELIVERY_DELAY_MIN_SECONDS", "3", "DELIVERY_DELAY_MAX_SECONDS", "1"),
    ],
)
def test_maximum_below_minimum_fails(
    tmp_path: Path, low_name: str, low: str, high_name: str, high: str
) -> None:
    result = start_django(tmp_path, DEBUG="true", **{low_name: low, high_name: high})

    assert result.returncode != 0
    error = last_line(result.stderr)
    assert error.startswith("ValueError:")
    assert f"{high_name}={float(high)} is less than {low_name}={float(low)}" in error


def test_field_limit_below_form_rows_fails(tmp_path: Path) -> None:
    result = start_django(
        tmp_path, DEBUG="true", MAX_RECIPIENT_ROWS="10", DATA_UPLOAD_MAX_NUMBER_FIELDS="159"
    )

    assert result.returncode != 0
    error = last_line(result.stderr)
    assert error.startswith("ValueError:")
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS=159 is less than the 160 fields" in error
    assert "MAX_RECIPIENT_ROWS=10" in error


def test_body_limits_follow_form_rows(tmp_path: Path) -> None:
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)"
    )

    computed = start_django(tmp_path, code=code, DEBUG="true", MAX_RECIPIENT_ROWS="10")
    chosen = start_django(
        tmp_path,
        code=code,
        DEBUG="true",
        MAX_RECIPIENT_ROWS="10",
        DATA_UPLOAD_MAX_NUMBER_FIELDS="160",
        DATA_UPLOAD_MAX_MEMORY_SIZE="65536",
    )

    assert computed.returncode == 0, computed.stderr
    # Six fields and 5 KiB per row, plus 100 fields and 1 MiB for the rest of the form.
    assert computed.stdout.split() == ["160", str(10 * 5 * 1024 + 1024 * 1024)]
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.split() == ["160", "65536"]


def test_range_limits_are_accepted(tmp_path: Path) -> None:
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DISPATCH_BATCH_SIZE, settings.DELIVERY_FAILURE_RATE, "
        "settings.DELIVERY_RETRY_MAX_SECONDS, settings.DELIVERY_RATE_LIMIT_BURST)"
    )
    result = start_django(
        tmp_path,
        code=code,
        DEBUG="true",
        DISPATCH_BATCH_SIZE="1",
        DELIVERY_FAILURE_RATE="1",
        DELIVERY_RETRY_BASE_SECONDS="0",
        DELIVERY_RETRY_MAX_SECONDS="0",
        DELIVERY_RATE_LIMIT_BURST="0",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1.0", "0.0", "None"]


LIVE_SETTINGS = (
    "LIVE_HEADER_INTERVAL_SECONDS",
    "LIVE_EVENT_INTERVAL_SECONDS",
    "LIVE_STREAM_MAX_ENTRIES",
    "LIVE_STREAM_TTL_SECONDS",
)
PRINT_LIVE_SETTINGS = (
    "import django; django.setup(); from django.conf import settings; "
    f"print(*(getattr(settings, name) for name in {LIVE_SETTINGS!r}))"
)


def test_live_settings_defaults(tmp_path: Path) -> None:
    # The child inherits this environment, so none of them may be set in it.
    assert set(LIVE_SETTINGS).isdisjoint(os.environ)

    result = start_django(tmp_path, code=PRINT_LIVE_SETTINGS, DEBUG="true")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0.2", "0.1", "1000", "3600"]


@pytest.mark.parametrize(
    "values",
    [
        {
            "LIVE_HEADER_INTERVAL_SECONDS": "0.001",
            "LIVE_EVENT_INTERVAL_SECONDS": "0",
            "LIVE_STREAM_MAX_ENTRIES": "10",
            "LIVE_STREAM_TTL_SECONDS": "60",
        },
        {
            "LIVE_HEADER_INTERVAL_SECONDS": "60",
            "LIVE_EVENT_INTERVAL_SECONDS": "5",
            "LIVE_STREAM_MAX_ENTRIES": "100000",
            "LIVE_STREAM_TTL_SECONDS": "86400",
        },
    ],
    ids=["lowest", "highest"],
)
def test_live_setting_limits_are_accepted(tmp_path: Path, values: dict[str, str]) -> None:
    result = start_django(tmp_path, code=PRINT_LIVE_SETTINGS, DEBUG="true", **values)

    assert result.returncode == 0, result.stderr
    expected = [str(float(values[name])) for name in LIVE_SETTINGS[:2]]
    expected += [values[name] for name in LIVE_SETTINGS[2:]]
    assert result.stdout.split() == expected


def test_default_providers_send_email_over_smtp(tmp_path: Path) -> None:
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "from dispatch.providers import get_provider; router = get_provider(); "
        "print(type(router).__name__, type(router.email).__name__, type(router.sms).__name__)"
    )
    provider_settings = {"DELIVERY_PROVIDER", "EMAIL_DELIVERY_PROVIDER", "SMS_DELIVERY_PROVIDER"}
    env = {name: value for name, value in os.environ.items() if name not in provider_settings}

    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env={
            **env,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DOTENV_PATH": str(tmp_path / "missing.env"),
            "DEBUG": "true",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ChannelRouter", "EmailBackendProvider", "SimulatedProvider"]


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_app_loggers_use_log_level(tmp_path: Path, level: str) -> None:
    apps = ["campaigns", "dispatch", "live", "suppressions", "imports", "accounts"]
    code = (
        "import logging, django; django.setup(); "
        "print(*(logging.getLevelName(logging.getLogger(app + '.views').getEffectiveLevel()) "
        f"for app in {apps!r}))"
    )

    result = start_django(tmp_path, code, DEBUG="true", LOG_LEVEL=level)

    assert result.returncode == 0, result.stderr
    assert dict(zip(apps, result.stdout.split(), strict=True)) == dict.fromkeys(apps, level)
