"""How a signed-in user uses each URL of the app, for the authorisation matrix tests.

MATRIX maps every URL name that needs a signed-in user to a Case: which
objects of the World its arguments name, what a member of the right
workspace gets for GET and for POST, and what a successful POST changed.
test_url_rules.py fails for a URL that has no case here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Role, Workspace, join_workspace
from api.models import ApiToken
from campaigns.models import Campaign, Recipient
from imports.models import RecipientImport
from suppressions.models import Suppression, SuppressionReason, suppress
from tests.campaigns.campaign_form import form_data
from tests.factories import MESSAGE_CONTENT, OPERATOR_PASSWORD, operator_user, operator_workspace


@dataclass
class World:
    """Objects of the operator's workspace in every state that some URL needs."""

    workspace: Workspace
    second_workspace: Workspace  # the operator owns this one too; it has no campaigns
    pending: Campaign  # with an upload waiting for its mapping
    ready: Campaign  # pending, without an import, so that it can be dispatched
    recipient: Recipient
    processing: Campaign
    paused: Campaign
    completed: Campaign
    mapping_import: RecipientImport
    queued_import: RecipientImport
    failed_import: RecipientImport
    suppression: Suppression
    member: Membership  # grace, a member of the operator's workspace
    newcomer: Any  # alan, an account in no workspace
    api_token: ApiToken  # the operator's, in the operator's workspace


def build_world(import_folder: Path) -> World:
    operator = operator_user()
    workspace = operator_workspace()
    second = Workspace.objects.create(name="Second team")
    join_workspace(operator, second, Role.OWNER)

    def campaign(name: str, status: str = Campaign.Status.PENDING) -> Campaign:
        created = Campaign.objects.create(
            workspace=workspace, name=name, email_html="<p>Hello {{ name }}</p>", **MESSAGE_CONTENT
        )
        Recipient.objects.create(campaign=created, name="Ada", email="ada@example.com")
        if status != Campaign.Status.PENDING:
            Campaign.objects.filter(pk=created.pk).update(status=status)
            created.refresh_from_db()
        return created

    pending = campaign("Pending")
    completed = campaign("Completed", Campaign.Status.COMPLETED)
    completed.recipients.update(
        status=Recipient.Status.FAILED, last_error_transient=True, failure_reason="timeout"
    )
    users = get_user_model().objects
    grace = users.create_user("grace", "grace@example.com", OPERATOR_PASSWORD)
    member, _ = join_workspace(grace, workspace, Role.MEMBER)
    return World(
        workspace=workspace,
        second_workspace=second,
        pending=pending,
        ready=campaign("Ready"),
        recipient=pending.recipients.get(),
        processing=campaign("Processing", Campaign.Status.PROCESSING),
        paused=campaign("Paused", Campaign.Status.PAUSED),
        completed=completed,
        mapping_import=_import(pending, import_folder, RecipientImport.Status.MAPPING),
        queued_import=_import(campaign("Importing"), import_folder, RecipientImport.Status.QUEUED),
        failed_import=_import(campaign("Import failed"), import_folder, "failed"),
        suppression=suppress(
            email="gone@example.com",
            reason=SuppressionReason.OPERATOR,
            workspace_id=workspace.pk,
        )[0],
        member=member,
        newcomer=users.create_user("alan", "alan@example.com", OPERATOR_PASSWORD),
        api_token=ApiToken.issue(workspace.pk, operator, "CI")[0],
    )


def _import(campaign: Campaign, folder: Path, status: str) -> RecipientImport:
    folder.mkdir(parents=True, exist_ok=True)
    stored_name = f"{uuid.uuid4().hex}.csv"
    content = b"Name,Email,Phone\nGrace,grace@example.com,+12025550101\n"
    (folder / stored_name).write_bytes(content)
    return RecipientImport.objects.create(
        campaign=campaign,
        status=status,
        queued_at=timezone.now(),
        file_name="people.csv",
        stored_name=stored_name,
        file_size=len(content),
        encoding="utf-8",
        delimiter=",",
        column_titles=["Name", "Email", "Phone"],
        sample_rows=[["Grace", "grace@example.com", "+12025550101"]],
        name_column=0,
        email_column=1,
        phone_column=2,
        phone_region="US",
        error="The worker stopped." if status == "failed" else "",
    )


Arguments = Callable[[World], list[Any]]
PostData = Callable[[World], dict[str, Any]]
Effect = Callable[[World, Client], bool]


@dataclass(frozen=True)
class Case:
    """How the right user uses one URL.

    `get` and `post_status` are the statuses of a successful GET and POST,
    None where the method is not allowed (405). `effect` returns whether the
    POST made its change. `scoped` is False for URLs that name nothing of a
    workspace: the user's own account pages, the current workspace's pages,
    the index stream (which drops other workspaces' ids) and the captured
    mail of development.
    """

    args: Arguments = field(default=lambda world: [])
    get: int | None = 200
    post: PostData | None = None
    post_status: int | None = None
    effect: Effect | None = None
    scoped: bool = True
    stream: bool = False
    query: Callable[[World], str] = field(default=lambda world: "")
    # Run with the right user's client before the POST.
    prepare: Callable[[World, Client], Any] = field(default=lambda world, client: None)


def _status(campaign_of: Callable[[World], Campaign], status: str) -> Effect:
    def changed(world: World, client: Client) -> bool:
        return Campaign.objects.get(pk=campaign_of(world).pk).status == status

    return changed


def _import_status(import_of: Callable[[World], RecipientImport], status: str) -> Effect:
    def changed(world: World, client: Client) -> bool:
        return RecipientImport.objects.get(pk=import_of(world).pk).status == status

    return changed


def _no_data(world: World) -> dict[str, Any]:
    return {}


MAPPING = {"name": "0", "email": "1", "phone": "2", "has_header": "on", "phone_region": "US"}

MATRIX: dict[str, Case] = {
    "accounts:logout": Case(
        get=None,
        post=_no_data,
        post_status=302,
        effect=lambda world, client: "_auth_user_id" not in client.session,
        scoped=False,
    ),
    "accounts:password_change": Case(
        post=lambda world: {
            "old_password": OPERATOR_PASSWORD,
            "new_password1": "another-long-passphrase-6612",
            "new_password2": "another-long-passphrase-6612",
        },
        post_status=302,
        effect=lambda world, client: operator_user().check_password("another-long-passphrase-6612"),
        scoped=False,
    ),
    "accounts:password_change_done": Case(scoped=False),
    "accounts:workspace": Case(scoped=False),
    "accounts:workspace_create": Case(
        post=lambda world: {"name": "New team"},
        post_status=303,
        effect=lambda world, client: Membership.objects.filter(
            workspace__name="New team", user__username="operator", role=Role.OWNER
        ).exists(),
        scoped=False,
    ),
    "accounts:workspace_switch": Case(
        get=None,
        post=lambda world: {"workspace": world.second_workspace.pk},
        post_status=303,
        effect=lambda world, client: client.session["workspace_id"] == world.second_workspace.pk,
        scoped=False,
    ),
    "accounts:workspace_rename": Case(
        get=None,
        post=lambda world: {"name": "Renamed team"},
        post_status=303,
        effect=lambda world, client: (
            Workspace.objects.get(pk=world.workspace.pk).name == "Renamed team"
        ),
        scoped=False,
    ),
    "accounts:workspace_delete": Case(
        post=_no_data,
        post_status=303,
        # Only a workspace without campaigns can be deleted: the second one.
        prepare=lambda world, client: client.post(
            reverse("accounts:workspace_switch"), {"workspace": world.second_workspace.pk}
        ),
        effect=lambda world, client: (
            not Workspace.objects.filter(pk=world.second_workspace.pk).exists()
        ),
        scoped=False,
    ),
    "accounts:member_add": Case(
        get=None,
        post=lambda world: {"user": "alan", "role": "member"},
        post_status=303,
        effect=lambda world, client: Membership.objects.filter(
            workspace=world.workspace, user=world.newcomer
        ).exists(),
        scoped=False,
    ),
    "accounts:member_role": Case(
        args=lambda world: [world.member.pk],
        get=None,
        post=lambda world: {"role": "owner"},
        post_status=303,
        effect=lambda world, client: Membership.objects.get(pk=world.member.pk).role == Role.OWNER,
    ),
    "accounts:member_remove": Case(
        args=lambda world: [world.member.pk],
        post=_no_data,
        post_status=303,
        effect=lambda world, client: not Membership.objects.filter(pk=world.member.pk).exists(),
    ),
    "accounts:api_tokens": Case(
        post=lambda world: {"name": "Deploy"},
        # The new token is shown in the response, never stored, so no redirect.
        post_status=200,
        effect=lambda world, client: ApiToken.objects.filter(
            workspace=world.workspace, name="Deploy"
        ).exists(),
        scoped=False,
    ),
    "accounts:api_token_revoke": Case(
        args=lambda world: [world.api_token.pk],
        get=None,
        post=_no_data,
        post_status=303,
        effect=lambda world, client: (
            ApiToken.objects.get(pk=world.api_token.pk).revoked_at is not None
        ),
    ),
    "api_docs": Case(scoped=False),
    "campaigns:index": Case(scoped=False),
    "campaigns:create": Case(
        post=lambda world: form_data("Created", [{"name": "Ada", "email": "ada@example.com"}]),
        post_status=303,
        effect=lambda world, client: Campaign.objects.filter(
            name="Created", workspace=world.workspace
        ).exists(),
        scoped=False,
    ),
    "campaigns:detail": Case(args=lambda world: [world.pending.pk]),
    "campaigns:edit": Case(
        args=lambda world: [world.pending.pk],
        post=lambda world: form_data(
            "Edited",
            [{"id": world.recipient.pk, "name": "Ada", "email": "ada@example.com"}],
            initial_forms=1,
        ),
        post_status=303,
        effect=lambda world, client: Campaign.objects.get(pk=world.pending.pk).name == "Edited",
    ),
    "campaigns:delete": Case(
        args=lambda world: [world.pending.pk],
        post=_no_data,
        post_status=303,
        effect=lambda world, client: not Campaign.objects.filter(pk=world.pending.pk).exists(),
    ),
    "campaigns:dispatch": Case(
        args=lambda world: [world.ready.pk],
        get=None,
        post=_no_data,
        post_status=303,
        effect=_status(lambda world: world.ready, Campaign.Status.PROCESSING),
    ),
    "campaigns:pause": Case(
        args=lambda world: [world.processing.pk],
        get=None,
        post=_no_data,
        post_status=303,
        effect=_status(lambda world: world.processing, Campaign.Status.PAUSED),
    ),
    "campaigns:resume": Case(
        args=lambda world: [world.paused.pk],
        get=None,
        post=_no_data,
        post_status=303,
        effect=lambda world, client: (
            Campaign.objects.get(pk=world.paused.pk).status != Campaign.Status.PAUSED
        ),
    ),
    "campaigns:cancel": Case(
        args=lambda world: [world.processing.pk],
        get=None,
        post=_no_data,
        post_status=303,
        effect=_status(lambda world: world.processing, Campaign.Status.CANCELLED),
    ),
    "campaigns:retry_failed": Case(
        args=lambda world: [world.completed.pk],
        get=None,
        post=_no_data,
        post_status=303,
        effect=_status(lambda world: world.completed, Campaign.Status.PROCESSING),
    ),
    "campaigns:duplicate": Case(
        args=lambda world: [world.pending.pk],
        get=None,
        post=_no_data,
        post_status=303,
        effect=lambda world, client: Campaign.objects.filter(
            workspace=world.workspace, name__startswith="Pending (copy"
        ).exists(),
    ),
    "campaigns:export": Case(args=lambda world: [world.pending.pk]),
    "campaigns:preview": Case(args=lambda world: [world.pending.pk]),
    "campaigns:preview_html": Case(args=lambda world: [world.pending.pk]),
    "campaigns:audit": Case(args=lambda world: [world.pending.pk]),
    "campaigns:test_send": Case(
        args=lambda world: [world.pending.pk],
        get=None,
        post=lambda world: {"address": "tester@example.com"},
        post_status=303,
        effect=lambda world, client: world.pending.audit_events.filter(action="test_sent").exists(),
    ),
    "campaigns:recipient_create": Case(
        args=lambda world: [world.pending.pk],
        post=lambda world: {"name": "Grace", "email": "grace@example.com"},
        post_status=303,
        effect=lambda world, client: world.pending.recipients.filter(name="Grace").exists(),
    ),
    "campaigns:recipient_edit": Case(
        args=lambda world: [world.pending.pk, world.recipient.pk],
        post=lambda world: {"name": "Ada Lovelace", "email": "ada@example.com"},
        post_status=303,
        effect=lambda world, client: (
            Recipient.objects.get(pk=world.recipient.pk).name == "Ada Lovelace"
        ),
    ),
    "campaigns:recipient_delete": Case(
        args=lambda world: [world.pending.pk, world.recipient.pk],
        post=_no_data,
        post_status=303,
        effect=lambda world, client: not Recipient.objects.filter(pk=world.recipient.pk).exists(),
    ),
    "campaigns:attempts": Case(args=lambda world: [world.pending.pk, world.recipient.pk]),
    "imports:new": Case(
        args=lambda world: [world.ready.pk],
        post=lambda world: {
            "file": SimpleUploadedFile("more.csv", b"Name,Email\nGrace,grace@example.com\n")
        },
        post_status=303,
        effect=lambda world, client: world.ready.imports.filter(file_name="more.csv").exists(),
    ),
    "imports:detail": Case(args=lambda world: [world.pending.pk, world.mapping_import.pk]),
    "imports:confirm": Case(
        args=lambda world: [world.pending.pk, world.mapping_import.pk],
        get=None,
        post=lambda world: MAPPING,
        post_status=303,
        effect=_import_status(lambda world: world.mapping_import, RecipientImport.Status.QUEUED),
    ),
    "imports:discard": Case(
        args=lambda world: [world.pending.pk, world.mapping_import.pk],
        get=None,
        post=_no_data,
        post_status=303,
        effect=_import_status(lambda world: world.mapping_import, RecipientImport.Status.CANCELLED),
    ),
    "imports:cancel": Case(
        args=lambda world: [world.queued_import.campaign_id, world.queued_import.pk],
        get=None,
        post=_no_data,
        post_status=303,
        effect=_import_status(lambda world: world.queued_import, RecipientImport.Status.CANCELLED),
    ),
    "imports:run_again": Case(
        args=lambda world: [world.failed_import.campaign_id, world.failed_import.pk],
        get=None,
        post=_no_data,
        post_status=303,
        effect=_import_status(lambda world: world.failed_import, RecipientImport.Status.QUEUED),
    ),
    "imports:report": Case(
        args=lambda world: [world.failed_import.campaign_id, world.failed_import.pk]
    ),
    "suppressions:index": Case(
        post=lambda world: {"address": "someone@example.com"},
        post_status=303,
        effect=lambda world, client: Suppression.objects.filter(
            workspace=world.workspace, email="someone@example.com"
        ).exists(),
        scoped=False,
    ),
    "suppressions:delete": Case(
        args=lambda world: [world.suppression.pk],
        post=_no_data,
        post_status=303,
        effect=lambda world, client: (
            not Suppression.objects.filter(pk=world.suppression.pk).exists()
        ),
    ),
    "live:campaign_stream": Case(args=lambda world: [world.pending.pk], stream=True),
    "live:index_stream": Case(
        scoped=False, stream=True, query=lambda world: f"?ids={world.pending.pk}"
    ),
    # Development only (404 unless DEBUG): the local SMTP sink's messages,
    # which belong to no workspace.
    "dev_mail:index": Case(get=404, scoped=False),
    "dev_mail:detail": Case(args=lambda world: ["sample"], get=404, scoped=False),
    "dev_mail:html": Case(args=lambda world: ["sample"], get=404, scoped=False),
}
