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

from accounts.models import Membership, Role, Workspace
from campaigns.models import Campaign

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
    assert output == (
        "Created user ada, owner of the new workspace “Default workspace” "
        f"(id {Workspace.objects.get().pk}).\n"
    )
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
        (["erin with space", "--password-stdin"], "a-long-passphrase-5521", "Invalid username:"),
        (["e" * 151, "--password-stdin"], "a-long-passphrase-5521", "Invalid username:"),
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


def test_demo_campaign_and_user_share_a_workspace() -> None:
    other = Workspace.objects.create(name="Elsewhere")
    out = io.StringIO()
    call_command("create_demo_campaign", "--workspace", "Demo team", stdout=out)
    password = re.findall(r"with the password (\S+) and press", out.getvalue())[-1]

    campaign = Campaign.objects.get()
    assert campaign.workspace.name == "Demo team"
    assert "in the workspace “Demo team”" in out.getvalue()
    client = Client()
    assert client.login(username="demo", password=password)
    assert client.get(campaign.get_absolute_url()).status_code == 200
    # The demo user joined only the workspace of the demo.
    assert not Membership.objects.filter(workspace=other).exists()


def test_first_user_owns_default_workspace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_user(monkeypatch, "ada", "--password-stdin", stdin="a-long-passphrase-5521")
    output = create_user(monkeypatch, "grace", "--password-stdin", stdin="a-long-passphrase-5521")

    workspace = Workspace.objects.get()
    assert workspace.name == "Default workspace"
    roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {"ada": Role.OWNER, "grace": Role.MEMBER}
    assert output.startswith("Created user grace, member of the workspace “Default workspace”")


def test_create_user_tidies_workspace_name(monkeypatch: pytest.MonkeyPatch) -> None:
    Workspace.objects.create(name="Team B")

    create_user(
        monkeypatch,
        "ada",
        "--workspace",
        "Team \n  B",
        "--password-stdin",
        stdin="a-long-passphrase-5521",
    )

    assert list(Workspace.objects.values_list("name", flat=True)) == ["Team B"]


def test_create_user_in_named_workspace_with_role(monkeypatch: pytest.MonkeyPatch) -> None:
    create_user(monkeypatch, "ada", "--password-stdin", stdin="a-long-passphrase-5521")
    create_user(
        monkeypatch,
        "grace",
        "--workspace",
        "Research",
        "--role",
        "member",
        "--password-stdin",
        stdin="a-long-passphrase-5521",
    )
    research = Workspace.objects.get(name="Research")
    output = create_user(
        monkeypatch,
        "alan",
        "--workspace",
        str(research.pk),
        "--role",
        "owner",
        "--password-stdin",
        stdin="a-long-passphrase-5521",
    )

    members = dict(
        Membership.objects.filter(workspace=research).values_list("user__username", "role")
    )
    assert members == {"grace": Role.MEMBER, "alan": Role.OWNER}
    assert "owner of the workspace “Research”" in output


@pytest.mark.parametrize(
    ("workspace", "message"),
    [
        ("999999", "No workspace has the id 999999."),
        ("Twins", "Several workspaces are named 'Twins' (ids "),
        ("   ", "Enter a name for the workspace."),
        ("x" * 101, "A workspace name has at most 100 characters."),
        ("Line\x00break", "A workspace name cannot contain control characters."),
    ],
)
def test_create_user_rejects_bad_workspace(
    monkeypatch: pytest.MonkeyPatch, workspace: str, message: str
) -> None:
    Workspace.objects.create(name="Twins")
    Workspace.objects.create(name="Twins")

    with pytest.raises(CommandError) as raised:
        create_user(
            monkeypatch,
            "ada",
            "--workspace",
            workspace,
            "--password-stdin",
            stdin="long-pass-5521x",
        )

    assert str(raised.value).startswith(message)
    # Nothing was created: neither the user nor a workspace.
    assert not get_user_model().objects.exists()
    assert Workspace.objects.count() == 2
