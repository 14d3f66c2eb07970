"""Unit tests of the .env reading and rewriting that bin/services and bin/setup use."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from config import env as config_env
from localdev.envfile import init_dotenv, read_dotenv, update_dotenv


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_update_replaces_only_named_keys(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# local settings\n"
        "SECRET_KEY=keep-me\n"
        'export DATABASE_URL="postgres://old@127.0.0.1:5432/db"\n'
        "\n"
        "DEBUG=true\n"
        "DATABASE_URL=postgres://duplicate@127.0.0.1:5432/db\n"
    )

    update_dotenv(
        path,
        {
            "DATABASE_URL": "postgres://postgres@127.0.0.1:25432/db",
            "REDIS_URL": "redis://127.0.0.1:26379/0",
        },
    )

    assert path.read_text() == (
        "# local settings\n"
        "SECRET_KEY=keep-me\n"
        "DATABASE_URL=postgres://postgres@127.0.0.1:25432/db\n"
        "\n"
        "DEBUG=true\n"
        "REDIS_URL=redis://127.0.0.1:26379/0\n"
    )


def test_update_creates_owner_only_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / ".env"

    update_dotenv(path, {"REDIS_URL": "redis://127.0.0.1:26379/0"})

    assert path.read_text() == "REDIS_URL=redis://127.0.0.1:26379/0\n"
    assert file_mode(path) == 0o600


def test_update_keeps_file_mode(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("DEBUG=true\n")
    path.chmod(0o640)

    update_dotenv(path, {"DEBUG": "false"})

    assert file_mode(path) == 0o640
    assert path.read_text() == "DEBUG=false\n"


def test_update_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"

    update_dotenv(path, {"DEBUG": "true"})

    assert sorted(item.name for item in tmp_path.iterdir()) == [".env"]


def test_read_matches_config_env_rules(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# comment\n"
        "export QUOTED='single quoted'\n"
        'DOUBLE="double quoted"\n'
        "  SPACED =  value with spaces  \n"
        "FIRST=one\n"
        "FIRST=two\n"
    )

    assert read_dotenv(path) == {
        "QUOTED": "single quoted",
        "DOUBLE": "double quoted",
        "SPACED": "value with spaces",
        "FIRST": "one",
    }


def test_read_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_dotenv(tmp_path / "missing.env") == {}


def test_written_urls_load_through_config_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file bin/services writes must read back the same through the settings' loader."""
    path = tmp_path / ".env"
    path.write_text("# kept\nDEBUG=true\n")
    database_url = "postgres://postgres:s3cret@127.0.0.1:25432/campaign_dispatcher"
    redis_url = "redis://127.0.0.1:26379/0"
    update_dotenv(path, {"DATABASE_URL": database_url, "REDIS_URL": redis_url})
    environment: dict[str, str] = {}
    monkeypatch.setattr(os, "environ", environment)

    config_env.load_dotenv(path)

    assert environment == {
        "DEBUG": "true",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
    }


def test_init_creates_debug_secret_and_sink(tmp_path: Path) -> None:
    path = tmp_path / ".env"

    added = init_dotenv(path)

    values = read_dotenv(path)
    assert added == ["DEBUG", "SECRET_KEY", "EMAIL_HOST", "EMAIL_PORT"]
    assert values["DEBUG"] == "true"
    assert len(values["SECRET_KEY"]) >= 50
    assert values["EMAIL_HOST"] == "127.0.0.1"
    assert values["EMAIL_PORT"] == "1025"
    assert file_mode(path) == 0o600


def test_init_makes_a_new_secret_each_time(tmp_path: Path) -> None:
    first, second = tmp_path / "first.env", tmp_path / "second.env"

    init_dotenv(first)
    init_dotenv(second)

    assert read_dotenv(first)["SECRET_KEY"] != read_dotenv(second)["SECRET_KEY"]


def test_init_keeps_existing_secret_key(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    original = "DEBUG=false\nSECRET_KEY=chosen-by-hand\nREDIS_URL=redis://127.0.0.1:26379/0\n"
    path.write_text(original)

    added = init_dotenv(path)

    assert added == []
    assert path.read_text() == original


def test_init_adds_missing_secret_key_only(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# mine\nDATABASE_URL=postgres://postgres@127.0.0.1:25432/db\n")

    added = init_dotenv(path)

    lines = path.read_text().splitlines()
    assert added == ["SECRET_KEY"]
    assert lines[:2] == ["# mine", "DATABASE_URL=postgres://postgres@127.0.0.1:25432/db"]
    assert lines[2].startswith("SECRET_KEY=")
    assert len(lines) == 3
    assert "DEBUG" not in read_dotenv(path)
