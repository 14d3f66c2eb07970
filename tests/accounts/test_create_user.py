"""`manage.py create_user` and the demo command's user."""

from __future__ import annotations

import io
import re
import sys
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def create_user(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    out = io.StringIO()
    call_command("create_user", *args, stdout=out)
    return out.getvalue()


def test_create_user_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    output = create_user(
        monkeypatch,
        "ada",
        "--email",
        "ada@example.com",
        "--password-stdin",
        stdin="a-long-passphrase-5521\n",
    )

    user = get_user_model().objects.get(username="ada")
    assert output == "Created user ada.\n"
    assert user.email == "ada@example.com"
    assert user.check_password("a-long-passphrase-5521")
    assert not user.is_staff
    assert Client().login(username="ada", password="a-long-passphrase-5521")


def test_create_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    create_user(monkeypatch, "root", "--admin", "--password-stdin", stdin="a-long-passphrase-5521")

    user = get_user_model().objects.get(username="root")
    assert user.is_staff
    assert user.is_superuser


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["ada", "--password-stdin"], "short", "The password is too weak:"),
        (["ada", "--password-stdin"], "", "No password on standard input."),
        (["ada"], "", "Standard input is not a terminal: pass --password-stdin"),
        (["  ", "--password-stdin"], "a-long-passphrase-5521", "The username is empty."),
        (
            ["ada", "--email", "not-an-address", "--password-stdin"],
            "a-long-passphrase-5521",
            "'not-an-address' is not a valid email address.",
        ),
    ],
)
def test_create_user_rejects_bad_input(
    monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: str, message: str
) -> None:
    with pytest.raises(CommandError) as raised:
        create_user(monkeypatch, *args, stdin=stdin)

    assert str(raised.value).startswith(message)
    assert not get_user_model().objects.exists()


def test_create_user_refuses_existing(monkeypatch: pytest.MonkeyPatch) -> None:
    create_user(monkeypatch, "ada", "--password-stdin", stdin="a-long-passphrase-5521")

    with pytest.raises(CommandError) as raised:
        create_user(monkeypatch, "ada", "--password-stdin", stdin="another-passphrase-77")

    assert "A user named 'ada' exists already." in str(raised.value)
    assert get_user_model().objects.get(username="ada").check_password("a-long-passphrase-5521")


def test_demo_prints_working_sign_in(settings: Any) -> None:
    out = io.StringIO()
    call_command("create_demo_campaign", stdout=out)
    first = re.search(r"sign in as demo with the password (\S+) and press", out.getvalue())
    call_command("create_demo_campaign", stdout=out)
    second = re.findall(r"sign in as demo with the password (\S+) and press", out.getvalue())[-1]

    assert first is not None
    client = Client()
    # Each run gives a new password, and the one printed last works.
    assert not client.login(username="demo", password=first.group(1))
    assert client.login(username="demo", password=second)
    assert client.get(reverse("campaigns:index")).status_code == 200
