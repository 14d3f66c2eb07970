"""Unit tests of config.env: the `.env` loader and the typed environment readers."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from config.env import env_bool, env_float, env_int, env_list, load_dotenv, require_at_least

# Variable names that only these tests use, so no real setting is touched.
KEYS = ["DOTENV_TEST_PLAIN", "DOTENV_TEST_QUOTED", "DOTENV_TEST_SINGLE", "DOTENV_TEST_OTHER"]


@pytest.fixture
def unset(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Return a function that unsets variables until the test ends.

    Setting a variable first makes monkeypatch remove whatever `load_dotenv`
    writes there during the test.
    """

    def unset_all(*names: str) -> None:
        for name in names:
            monkeypatch.setenv(name, "placeholder")
            monkeypatch.delenv(name)

    unset_all(*KEYS)
    return unset_all


def write_dotenv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text, encoding="utf-8")
    return path


# load_dotenv


def test_load_copies_values(tmp_path: Path, unset: Callable[..., None]) -> None:
    load_dotenv(write_dotenv(tmp_path, "DOTENV_TEST_PLAIN=value\n"))

    assert os.environ["DOTENV_TEST_PLAIN"] == "value"


def test_load_keeps_environment_values(
    tmp_path: Path, unset: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOTENV_TEST_PLAIN", "from-the-environment")
    monkeypatch.setenv("DOTENV_TEST_OTHER", "")

    load_dotenv(write_dotenv(tmp_path, "DOTENV_TEST_PLAIN=from-file\nDOTENV_TEST_OTHER=x\n"))

    assert os.environ["DOTENV_TEST_PLAIN"] == "from-the-environment"
    # An empty value set in the environment still counts as set.
    assert os.environ["DOTENV_TEST_OTHER"] == ""


def test_load_strips_quotes(tmp_path: Path, unset: Callable[..., None]) -> None:
    text = (
        'DOTENV_TEST_QUOTED="two words"\n'
        "DOTENV_TEST_SINGLE='it is # not a comment'\n"
        "DOTENV_TEST_OTHER=\"mismatched'\n"
    )

    load_dotenv(write_dotenv(tmp_path, text))

    assert os.environ["DOTENV_TEST_QUOTED"] == "two words"
    assert os.environ["DOTENV_TEST_SINGLE"] == "it is # not a comment"
    assert os.environ["DOTENV_TEST_OTHER"] == "\"mismatched'"


def test_load_trims_and_accepts_export(tmp_path: Path, unset: Callable[..., None]) -> None:
    text = "  export DOTENV_TEST_PLAIN = spaced out  \nDOTENV_TEST_OTHER=a=b=c\n"

    load_dotenv(write_dotenv(tmp_path, text))

    assert os.environ["DOTENV_TEST_PLAIN"] == "spaced out"
    # Only the first = separates the key from the value.
    assert os.environ["DOTENV_TEST_OTHER"] == "a=b=c"


def test_load_ignores_comments_and_blank_lines(tmp_path: Path, unset: Callable[..., None]) -> None:
    text = (
        "# DOTENV_TEST_OTHER=commented out\n"
        "\n"
        "   \n"
        "    # indented comment\n"
        "DOTENV_TEST_PLAIN=value\n"
        "\t\n"
    )

    load_dotenv(write_dotenv(tmp_path, text))

    assert os.environ["DOTENV_TEST_PLAIN"] == "value"
    assert "DOTENV_TEST_OTHER" not in os.environ


def test_load_accepts_empty_value(tmp_path: Path, unset: Callable[..., None]) -> None:
    load_dotenv(write_dotenv(tmp_path, "DOTENV_TEST_PLAIN=\n"))

    assert os.environ["DOTENV_TEST_PLAIN"] == ""


@pytest.mark.parametrize(
    ("bad_line", "line_number"),
    [("DOTENV_TEST_OTHER value", 4), ("=value", 4)],
)
def test_load_rejects_bad_line(
    tmp_path: Path, unset: Callable[..., None], bad_line: str, line_number: int
) -> None:
    path = write_dotenv(tmp_path, f"# settings\nDOTENV_TEST_PLAIN=ok\n\n{bad_line}\n")

    with pytest.raises(ValueError, match="expected KEY=value") as raised:
        load_dotenv(path)

    assert str(raised.value).startswith(f"{path}:{line_number}:")
    assert repr(bad_line) in str(raised.value)


def test_load_ignores_missing_file(tmp_path: Path, unset: Callable[..., None]) -> None:
    load_dotenv(tmp_path / "missing.env")

    assert not any(key in os.environ for key in KEYS)


# Typed readers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        (" Yes ", True),
        ("ON", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("off", False),
        ("", False),
    ],
)
def test_env_bool_reads_value(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("DOTENV_TEST_PLAIN", raw)

    assert env_bool("DOTENV_TEST_PLAIN", not expected) is expected


def test_env_bool_default_when_unset(unset: Callable[..., None]) -> None:
    assert env_bool("DOTENV_TEST_PLAIN", True) is True
    assert env_bool("DOTENV_TEST_PLAIN", False) is False


def test_env_bool_rejects_other_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOTENV_TEST_PLAIN", "maybe")

    with pytest.raises(ValueError, match=r"DOTENV_TEST_PLAIN='maybe' is not a boolean"):
        env_bool("DOTENV_TEST_PLAIN", False)


def test_env_numbers(monkeypatch: pytest.MonkeyPatch, unset: Callable[..., None]) -> None:
    monkeypatch.setenv("DOTENV_TEST_PLAIN", "2.5")
    monkeypatch.setenv("DOTENV_TEST_OTHER", " ")

    assert env_float("DOTENV_TEST_PLAIN", 1.0) == 2.5
    assert env_float("DOTENV_TEST_OTHER", 1.0) == 1.0
    assert env_int("DOTENV_TEST_OTHER", 7) == 7
    assert env_int("DOTENV_TEST_QUOTED", 7) == 7


def test_env_numbers_reject_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOTENV_TEST_PLAIN", "2.5")
    monkeypatch.setenv("DOTENV_TEST_OTHER", "fast")

    with pytest.raises(ValueError, match=r"DOTENV_TEST_PLAIN='2.5' is not an integer"):
        env_int("DOTENV_TEST_PLAIN", 1)
    with pytest.raises(ValueError, match=r"DOTENV_TEST_OTHER='fast' is not a number"):
        env_float("DOTENV_TEST_OTHER", 1.0)


def test_env_numbers_check_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOTENV_TEST_PLAIN", "5")

    assert env_int("DOTENV_TEST_PLAIN", 1, minimum=5, maximum=5) == 5
    assert env_float("DOTENV_TEST_PLAIN", 1.0, positive=True, maximum=5.0) == 5.0
    with pytest.raises(ValueError, match=r"DOTENV_TEST_PLAIN='5' is out of range: .* at least 6$"):
        env_int("DOTENV_TEST_PLAIN", 1, minimum=6)
    with pytest.raises(ValueError, match=r"'5' is out of range: expected an integer of at most 4$"):
        env_int("DOTENV_TEST_PLAIN", 1, maximum=4)
    with pytest.raises(
        ValueError, match=r"'5' is out of range: expected a number from 0.0 to 1.0$"
    ):
        env_float("DOTENV_TEST_PLAIN", 0.0, minimum=0.0, maximum=1.0)


def test_env_float_positive_rejects_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOTENV_TEST_PLAIN", "0")

    with pytest.raises(ValueError, match=r"'0' is out of range: expected a number above 0$"):
        env_float("DOTENV_TEST_PLAIN", 1.0, positive=True)


def test_env_numbers_default_skips_range(unset: Callable[..., None]) -> None:
    # The default is the caller's own value, so only environment values are checked.
    assert env_int("DOTENV_TEST_PLAIN", 0, minimum=1) == 0
    assert env_float("DOTENV_TEST_PLAIN", -1.0, positive=True) == -1.0


def test_require_at_least() -> None:
    require_at_least("HIGH", 2.0, "LOW", 2.0)
    with pytest.raises(ValueError, match=r"^HIGH=1.0 is less than LOW=2.0: set HIGH to at least"):
        require_at_least("HIGH", 1.0, "LOW", 2.0)


def test_env_list_splits_commas(
    monkeypatch: pytest.MonkeyPatch, unset: Callable[..., None]
) -> None:
    monkeypatch.setenv("DOTENV_TEST_PLAIN", " localhost, ,127.0.0.1 ,")
    monkeypatch.setenv("DOTENV_TEST_OTHER", "")

    assert env_list("DOTENV_TEST_PLAIN", []) == ["localhost", "127.0.0.1"]
    assert env_list("DOTENV_TEST_OTHER", ["default"]) == []
    assert env_list("DOTENV_TEST_QUOTED", ["default"]) == ["default"]
