"""Workspaces: the current one in the session, the switcher, and the owners' pages."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Role, Workspace, join_workspace
from accounts.workspaces import SESSION_KEY
from audit.models import Action, AuditEvent
from campaigns.models import Campaign
from tests.factories import OPERATOR_PASSWORD, operator_user, operator_workspace
from tests.smtp import RecordingHandler

pytestmark = pytest.mark.django_db

WORKSPACE_URL = reverse("accounts:workspace")


def user(username: str, *workspaces: tuple[Workspace, str]) -> Any:
    created = get_user_model().objects.create_user(
        username, f"{username}@example.com", OPERATOR_PASSWORD
    )
    for workspace, role in workspaces:
        join_workspace(created, workspace, role)
    return created


def signed_in_as(account: Any) -> Client:
    client = Client()
    client.force_login(account)
    return client


def events(workspace: Workspace) -> list[tuple[str, str, str]]:
    return list(
        AuditEvent.objects.filter(workspace=workspace, campaign_name="")
        .order_by("id")
        .values_list("action", "actor_name", "detail")
    )


def flash(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_user_without_workspace_is_told_so() -> None:
    client = signed_in_as(user("loner"))

    page = client.get(reverse("campaigns:index"))
    own_account = client.get(reverse("accounts:password_change"))

    assert page.status_code == 403
    assert "You do not belong to a workspace" in page.content.decode()
    # Account pages and creating a workspace still work.
    assert own_account.status_code == 200
    assert client.get(reverse("accounts:workspace_create")).status_code == 200


def test_default_is_the_oldest_membership(make_campaign: Callable[..., Campaign]) -> None:
    beta = Workspace.objects.create(name="Beta")
    alpha = Workspace.objects.create(name="Alpha")
    make_campaign(name="In alpha", workspace=alpha)
    make_campaign(name="In beta", workspace=beta)
    client = signed_in_as(user("ada", (beta, Role.MEMBER), (alpha, Role.MEMBER)))

    html = client.get(reverse("campaigns:index")).content.decode()

    # Beta was joined first, although Alpha comes first by name.
    assert "In beta" in html
    assert "In alpha" not in html
    assert client.session[SESSION_KEY] == beta.pk


def test_being_added_elsewhere_keeps_the_current_workspace() -> None:
    team = Workspace.objects.create(name="Team B")
    frank = user("frank", (team, Role.MEMBER))
    client = signed_in_as(frank)
    client.get(reverse("campaigns:index"))
    # Another user's workspace, whose name sorts first, adds frank.
    attacker = Workspace.objects.create(name="!Attack")
    join_workspace(user("gina"), attacker, Role.OWNER)
    join_workspace(frank, attacker, Role.MEMBER)

    client.post(
        reverse("campaigns:create"),
        {
            "name": "Private list",
            "recipients-TOTAL_FORMS": "1",
            "recipients-INITIAL_FORMS": "0",
            "recipients-0-email": "vip@example.com",
        },
    )
    fresh = signed_in_as(frank)
    fresh.get(reverse("campaigns:index"))

    assert Campaign.objects.get(name="Private list").workspace == team
    # A new session starts in the workspace that frank joined first, too.
    assert fresh.session[SESSION_KEY] == team.pk


def test_switch_workspace(make_campaign: Callable[..., Campaign]) -> None:
    alpha = Workspace.objects.create(name="Alpha")
    beta = Workspace.objects.create(name="Beta")
    make_campaign(name="In alpha", workspace=alpha)
    make_campaign(name="In beta", workspace=beta)
    client = signed_in_as(user("ada", (alpha, Role.MEMBER), (beta, Role.MEMBER)))
    before = client.get(reverse("campaigns:index")).content.decode()

    response = client.post(reverse("accounts:workspace_switch"), {"workspace": beta.pk})
    after = client.get(reverse("campaigns:index"))

    assert 'name="workspace"' in before  # the switcher, for a user of two workspaces
    assert response.status_code == 303
    assert response["Location"] == reverse("campaigns:index")
    assert client.session[SESSION_KEY] == beta.pk
    assert "In beta" in after.content.decode()
    assert "In alpha" not in after.content.decode()
    assert flash(after) == ["You are working in “Beta”."]


@pytest.mark.parametrize("value", ["", "abc", "99999999", "1" * 30, "-1"])
def test_switch_to_unknown_or_foreign_workspace_404(client: Client, value: str) -> None:
    foreign = Workspace.objects.create(name="Foreign")
    values = {"99999999": str(foreign.pk)}

    response = client.post(
        reverse("accounts:workspace_switch"), {"workspace": values.get(value, value)}
    )

    assert response.status_code == 404
    # The session stays in the operator's workspace.
    assert client.session[SESSION_KEY] == operator_workspace().pk


def test_left_workspace_falls_back(make_campaign: Callable[..., Campaign]) -> None:
    alpha = Workspace.objects.create(name="Alpha")
    beta = Workspace.objects.create(name="Beta")
    make_campaign(name="In alpha", workspace=alpha)
    ada = user("ada", (alpha, Role.MEMBER), (beta, Role.MEMBER))
    client = signed_in_as(ada)
    client.post(reverse("accounts:workspace_switch"), {"workspace": beta.pk})

    Membership.objects.filter(user=ada, workspace=beta).delete()
    html = client.get(reverse("campaigns:index")).content.decode()

    assert "In alpha" in html


def test_new_campaign_goes_to_the_current_workspace(client: Client) -> None:
    second = Workspace.objects.create(name="Second")
    join_workspace(operator_user(), second, Role.MEMBER)
    client.post(reverse("accounts:workspace_switch"), {"workspace": second.pk})

    client.post(
        reverse("campaigns:create"),
        {
            "name": "Fresh",
            "recipients-TOTAL_FORMS": "1",
            "recipients-INITIAL_FORMS": "0",
            "recipients-0-email": "ada@example.com",
        },
    )

    assert Campaign.objects.get(name="Fresh").workspace == second


def test_owner_sees_members_and_forms(client: Client) -> None:
    user("grace", (operator_workspace(), Role.MEMBER))

    html = client.get(WORKSPACE_URL).content.decode()

    assert "grace" in html
    assert "Add member" in html
    assert "Rename" in html


def test_member_sees_members_without_forms() -> None:
    grace = user("grace", (operator_workspace(), Role.MEMBER))
    operator_user()

    html = signed_in_as(grace).get(WORKSPACE_URL).content.decode()

    assert "operator" in html
    assert "Add member" not in html
    assert "Rename" not in html
    assert "Leave" in html


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("accounts:workspace_rename", {"name": "Taken over"}),
        ("accounts:member_add", {"user": "alan", "role": "owner"}),
    ],
)
def test_member_cannot_manage_workspace(name: str, data: dict[str, str]) -> None:
    grace = user("grace", (operator_workspace(), Role.MEMBER))
    user("alan")

    response = signed_in_as(grace).post(reverse(name), data)

    assert response.status_code == 403
    assert "Only owners of this workspace can do this" in response.content.decode()
    assert operator_workspace().name == "Operators"
    assert not Membership.objects.filter(user__username="alan").exists()


def test_member_cannot_change_roles_or_remove_others() -> None:
    workspace = operator_workspace()
    operator = Membership.objects.get(user=operator_user(), workspace=workspace)
    grace = signed_in_as(user("grace", (workspace, Role.MEMBER)))

    role = grace.post(reverse("accounts:member_role", args=[operator.pk]), {"role": "member"})
    remove = grace.post(reverse("accounts:member_remove", args=[operator.pk]))

    assert (role.status_code, remove.status_code) == (403, 403)
    assert Membership.objects.get(pk=operator.pk).role == Role.OWNER


def test_switcher_tells_same_names_apart() -> None:
    first = Workspace.objects.create(name="Team")
    second = Workspace.objects.create(name="Team")
    client = signed_in_as(user("ada", (first, Role.MEMBER), (second, Role.MEMBER)))

    html = client.get(reverse("campaigns:index")).content.decode()

    assert f">Team (#{first.pk})</option>" in html
    assert f">Team (#{second.pk})</option>" in html


def test_member_leaves() -> None:
    workspace = operator_workspace()
    operator_user()
    grace = user("grace", (workspace, Role.MEMBER))
    membership = Membership.objects.get(user=grace)
    client = signed_in_as(grace)

    confirm = client.get(reverse("accounts:member_remove", args=[membership.pk]))
    response = client.post(reverse("accounts:member_remove", args=[membership.pk]))

    assert "Leave “Operators”?" in confirm.content.decode()
    assert response["Location"] == reverse("campaigns:index")
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert events(workspace) == [(Action.MEMBER_REMOVED, "grace", "grace")]
    assert client.get(reverse("campaigns:index")).status_code == 403


def test_last_owner_cannot_leave_or_step_down(client: Client) -> None:
    membership = Membership.objects.get(user=operator_user())

    demote = client.post(reverse("accounts:member_role", args=[membership.pk]), {"role": "member"})
    leave = client.post(reverse("accounts:member_remove", args=[membership.pk]), follow=True)

    assert demote.status_code == 303
    assert Membership.objects.get(pk=membership.pk).role == Role.OWNER
    assert flash(leave)[0].startswith("You are the last owner of this workspace.")
    assert events(operator_workspace()) == []


def test_last_owner_is_not_offered_leave(client: Client) -> None:
    user("grace", (operator_workspace(), Role.MEMBER))

    html = client.get(WORKSPACE_URL).content.decode()

    assert "Only owner" in html
    assert ">Leave</a>" not in html


def test_owner_promotes_then_steps_down(client: Client) -> None:
    workspace = operator_workspace()
    grace = Membership.objects.get(user=user("grace", (workspace, Role.MEMBER)))
    mine = Membership.objects.get(user=operator_user())

    client.post(reverse("accounts:member_role", args=[grace.pk]), {"role": "owner"})
    client.post(reverse("accounts:member_role", args=[mine.pk]), {"role": "member"})

    roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {"operator": Role.MEMBER, "grace": Role.OWNER}
    assert flash(client.get(WORKSPACE_URL))[-1] == "operator is now a member."
    assert events(workspace) == [
        (Action.MEMBER_ROLE_CHANGED, "operator", "grace: member → owner"),
        (Action.MEMBER_ROLE_CHANGED, "operator", "operator: owner → member"),
    ]
    # No longer an owner, the operator cannot change roles back.
    back = client.post(reverse("accounts:member_role", args=[mine.pk]), {"role": "owner"})
    assert back.status_code == 403


def test_membership_of_another_workspace_404(client: Client) -> None:
    foreign = Workspace.objects.create(name="Foreign")
    stranger = Membership.objects.get(user=user("stranger", (foreign, Role.MEMBER)))

    role = client.post(reverse("accounts:member_role", args=[stranger.pk]), {"role": "owner"})
    remove = client.post(reverse("accounts:member_remove", args=[stranger.pk]))

    assert (role.status_code, remove.status_code) == (404, 404)
    assert Membership.objects.get(pk=stranger.pk).role == Role.MEMBER


def test_invalid_role_changes_nothing(client: Client) -> None:
    grace = Membership.objects.get(user=user("grace", (operator_workspace(), Role.MEMBER)))

    response = client.post(
        reverse("accounts:member_role", args=[grace.pk]), {"role": "admin"}, follow=True
    )

    assert flash(response) == ["Choose owner or member as the role."]
    assert Membership.objects.get(pk=grace.pk).role == Role.MEMBER


@pytest.mark.parametrize("given", ["alan", "ALAN@example.com"])
def test_owner_adds_existing_account(client: Client, given: str) -> None:
    alan = user("alan")

    response = client.post(reverse("accounts:member_add"), {"user": given, "role": "member"})

    assert response.status_code == 303
    assert Membership.objects.get(user=alan).role == Role.MEMBER
    assert events(operator_workspace()) == [(Action.MEMBER_ADDED, "operator", "alan as member")]


def test_address_in_other_case_finds_invited_account(
    client: Client, smtp_sink: RecordingHandler
) -> None:
    # Invitations make the lower-cased address the username.
    frank = get_user_model().objects.create_user("frank@example.com", "", OPERATOR_PASSWORD)

    response = client.post(
        reverse("accounts:member_add"), {"user": "Frank@Example.com", "role": "owner"}, follow=True
    )

    assert Membership.objects.get(user=frank).role == Role.OWNER
    assert flash(response) == ["frank@example.com is now an owner of “Operators”."]
    assert smtp_sink.messages == []


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ("", "Enter the username or the email address of the person."),
        ("nobody", "No account has the username nobody."),
        ("not an address@", "not an address@ is not a valid email address."),
        ("operator", "operator is already a member of this workspace."),
        ("x" * 255, "Ensure this value has at most 254 characters"),
    ],
)
def test_add_member_rejects(client: Client, given: str, error: str) -> None:
    response = client.post(reverse("accounts:member_add"), {"user": given, "role": "member"})

    assert response.status_code == 422
    assert error in response.content.decode()
    assert Membership.objects.count() == 1


def test_invite_by_email_then_choose_password(
    client: Client, smtp_sink: RecordingHandler, settings: Any
) -> None:
    settings.SITE_URL = "http://testserver"

    response = client.post(
        reverse("accounts:member_add"), {"user": "Hedy@Example.com", "role": "owner"}
    )

    assert response.status_code == 303
    invited = get_user_model().objects.get(username="hedy@example.com")
    assert not invited.has_usable_password()
    assert Membership.objects.get(user=invited).role == Role.OWNER
    message = email.message_from_bytes(smtp_sink.messages[0], policy=email.policy.default)
    assert message["To"] == "Hedy@Example.com"
    body = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "operator added you to the workspace “Operators”" in body
    link = re.search(r"http://testserver(/accounts/password/reset/\S+)", body)
    assert link is not None

    newcomer = Client()
    form_page = newcomer.get(link.group(1), follow=True)
    password = "a-new-long-passphrase-8812"
    newcomer.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": password, "new_password2": password},
    )
    assert newcomer.login(username="hedy@example.com", password=password)
    assert newcomer.get(reverse("campaigns:index")).status_code == 200


def test_invitation_that_cannot_be_sent_adds_nobody(client: Client, settings: Any) -> None:
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            # Nothing listens on port 9 of loopback (discard), so the connection is refused.
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
        }
    }

    response = client.post(
        reverse("accounts:member_add"), {"user": "hedy@example.com", "role": "member"}
    )

    assert response.status_code == 422
    assert "The invitation could not be sent" in response.content.decode()
    assert not get_user_model().objects.filter(username="hedy@example.com").exists()


def test_invited_account_added_elsewhere_gets_a_new_link(
    client: Client, smtp_sink: RecordingHandler
) -> None:
    invited = get_user_model().objects.create_user("hedy@example.com", "hedy@example.com")
    invited.set_unusable_password()
    invited.save()

    response = client.post(
        reverse("accounts:member_add"), {"user": "HEDY@example.com", "role": "member"}, follow=True
    )

    assert Membership.objects.get(user=invited).role == Role.MEMBER
    assert len(smtp_sink.messages) == 1
    assert flash(response) == [
        "Invitation sent to hedy@example.com. They join as a member and choose a password "
        "through the link."
    ]


def test_invitation_page_asks_to_choose_a_password(
    client: Client, smtp_sink: RecordingHandler, settings: Any
) -> None:
    settings.SITE_URL = "http://testserver"
    client.post(reverse("accounts:member_add"), {"user": "hedy@example.com", "role": "member"})
    message = email.message_from_bytes(smtp_sink.messages[0], policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"http://testserver(/accounts/password/reset/\S+)", body)
    assert link is not None

    page = Client().get(link.group(1), follow=True).content.decode()

    assert "Choose your password" in page
    assert "You sign in as hedy@example.com." in page


def test_expired_invitation_can_be_sent_again(smtp_sink: RecordingHandler) -> None:
    invited = get_user_model().objects.create_user("hedy@example.com", "hedy@example.com")
    invited.set_unusable_password()
    invited.save()

    Client().post(reverse("accounts:password_reset"), {"email": "hedy@example.com"})

    assert len(smtp_sink.messages) == 1


def test_rename(client: Client) -> None:
    response = client.post(reverse("accounts:workspace_rename"), {"name": "  Growth   team "})
    blank = client.post(reverse("accounts:workspace_rename"), {"name": "   "})

    assert response.status_code == 303
    assert Workspace.objects.get().name == "Growth team"
    assert blank.status_code == 422
    assert "Enter a name for the workspace." in blank.content.decode()
    assert events(Workspace.objects.get()) == [
        (Action.WORKSPACE_RENAMED, "operator", "Operators → Growth team")
    ]


def test_create_workspace_switches_to_it(client: Client) -> None:
    response = client.post(reverse("accounts:workspace_create"), {"name": "Side project"})

    created = Workspace.objects.get(name="Side project")
    assert response.status_code == 303
    assert client.session[SESSION_KEY] == created.pk
    assert Membership.objects.get(workspace=created).role == Role.OWNER
    assert events(created) == [(Action.WORKSPACE_CREATED, "operator", "Side project")]
    page = client.get(WORKSPACE_URL).content.decode()
    assert "Side project" in page
    assert "Workspace created" in page


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "Enter a name for the workspace."),
        ("   ", "Enter a name for the workspace."),
        ("x" * 101, "Ensure this value has at most 100 characters"),
        ("Bell\x07", "A workspace name cannot contain control characters."),
        (" Operators ", "You already have a workspace named “Operators”."),
    ],
)
def test_create_workspace_rejects_bad_names(client: Client, name: str, error: str) -> None:
    operator_user()

    response = client.post(reverse("accounts:workspace_create"), {"name": name})

    assert response.status_code == 422
    assert error in response.content.decode()
    assert Workspace.objects.count() == 1


def test_workspace_page_without_workspace_explains() -> None:
    response = signed_in_as(user("loner")).get(WORKSPACE_URL)

    assert response.status_code == 403
    assert "You do not belong to a workspace" in response.content.decode()


def test_delete_empty_workspace(client: Client) -> None:
    spare = Workspace.objects.create(name="Spare")
    join_workspace(operator_user(), spare, Role.OWNER)
    client.post(reverse("accounts:workspace_switch"), {"workspace": spare.pk})

    confirm = client.get(reverse("accounts:workspace_delete"))
    response = client.post(reverse("accounts:workspace_delete"))

    assert "Delete “Spare”?" in confirm.content.decode()
    assert response.status_code == 303
    assert not Workspace.objects.filter(pk=spare.pk).exists()
    # The session falls back to the operator's other workspace.
    assert client.get(reverse("campaigns:index")).status_code == 200


def test_workspace_with_campaigns_is_kept(
    client: Client, make_campaign: Callable[..., Campaign]
) -> None:
    make_campaign()

    response = client.post(reverse("accounts:workspace_delete"), follow=True)

    assert Workspace.objects.filter(pk=operator_workspace().pk).exists()
    assert flash(response) == [
        "“Operators” still has campaigns. Delete them first; only a workspace without "
        "campaigns can be deleted."
    ]


def test_member_cannot_delete_workspace() -> None:
    workspace = operator_workspace()
    grace = signed_in_as(user("grace", (workspace, Role.MEMBER)))

    response = grace.post(reverse("accounts:workspace_delete"))

    assert response.status_code == 403
    assert Workspace.objects.filter(pk=workspace.pk).exists()


def test_not_found_page_mentions_workspaces(client: Client) -> None:
    join_workspace(operator_user(), Workspace.objects.create(name="Other"), Role.MEMBER)

    response = client.get(reverse("campaigns:detail", args=[999_999]))

    assert response.status_code == 404
    assert "switch to their workspace" in response.content.decode()
