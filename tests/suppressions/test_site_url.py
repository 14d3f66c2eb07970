"""The SITE_URL setting that unsubscribe links start with, read in a fresh process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.config.test_settings import last_line, start_django

PRINT_SITE_URL = (
    "import django; django.setup(); from django.conf import settings; print(settings.SITE_URL)"
)


def test_site_url_default(tmp_path: Path) -> None:
    # The child inherits this environment, so SITE_URL may not be set in it.
    assert "SITE_URL" not in os.environ

    result = start_django(tmp_path, code=PRINT_SITE_URL, DEBUG="true")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://127.0.0.1:8000"


def test_site_url_trailing_slash_dropped(tmp_path: Path) -> None:
    result = start_django(
        tmp_path, code=PRINT_SITE_URL, DEBUG="true", SITE_URL="https://mail.example.com/"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "https://mail.example.com"


@pytest.mark.parametrize("value", ["mail.example.com", "ftp://mail.example.com", ""])
def test_site_url_not_absolute_fails(tmp_path: Path, value: str) -> None:
    result = start_django(tmp_path, DEBUG="true", SITE_URL=value)

    assert result.returncode != 0
    error = last_line(result.stderr)
    assert error.startswith("django.core.exceptions.ImproperlyConfigured:")
    assert "is not an absolute URL" in error
