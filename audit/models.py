"""The audit trail: who changed each campaign, how and when.

Views call `record` where a change succeeded, inside the change's
transaction when it has one, so a change that rolls back leaves no event.
Events outlive their campaign and their actor: both keys become NULL on
delete, and the names stored next to them keep the log readable.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Workspace
from campaigns.models import CAMPAIGN_NAME_MAX_LENGTH, Campaign

DETAIL_MAX_LENGTH = 500


class Action(models.TextChoices):
    CREATED = "created", "Created"
    EDITED = "edited", "Edited"
    DUPLICATED = "duplicated", "Duplicated"
    DELETED = "deleted", "Deleted"
    DISPATCHED = "dispatched", "Dispatched"
    PAUSED = "paused", "Paused"
    RESUMED = "resumed", "Resumed"
    CANCELLED = "cancelled", "Cancelled"
    RETRIED_FAILED = "retried_failed", "Retried failed"
    RECIPIENT_ADDED = "recipient_added", "Recipient added"
    RECIPIENT_EDITED = "recipient_edited", "Recipient edited"
    RECIPIENT_DELETED = "recipient_deleted", "Recipient deleted"
    TEST_SENT = "test_sent", "Test sent"
    IMPORT_CONFIRMED = "import_confirmed", "Import confirmed"
    IMPORT_CANCELLED = "import_cancelled", "Import cancelled"
    IMPORT_DISCARDED = "import_discarded", "Upload discarded"
    # Changes to a workspace, recorded without a campaign.
    WORKSPACE_CREATED = "workspace_created", "Workspace created"
    WORKSPACE_RENAMED = "workspace_renamed", "Workspace renamed"
    MEMBER_ADDED = "member_added", "Member added"
    MEMBER_ROLE_CHANGED = "member_role_changed", "Member's role changed"
    MEMBER_REMOVED = "member_removed", "Member removed"
    API_TOKEN_CREATED = "api_token_created", "API token created"
    API_TOKEN_REVOKED = "api_token_revoked", "API token revoked"


class AuditEvent(models.Model):
    """One action on a campaign or on a workspace, by a user or by the system
    (`actor` is None)."""

    Action = Action

    # No index of its own: audit_workspace_created starts with workspace_id.
    workspace = models.ForeignKey(
        "accounts.Workspace",
        on_delete=models.CASCADE,
        related_name="audit_events",
        db_index=False,
    )
    # No index of its own: audit_campaign_created starts with campaign_id.
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
        db_index=False,
    )
    # Empty for an event of the workspace itself.
    campaign_name = models.CharField(max_length=CAMPAIGN_NAME_MAX_LENGTH, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    # Empty for the system, such as the dispatch engine's automatic pause.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=30, choices=Action.choices)
    detail = models.CharField(max_length=DETAIL_MAX_LENGTH, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A campaign's log, newest first, read backwards. The id breaks
            # ties between events of the same microsecond without a sort.
            models.Index(fields=["campaign", "created_at", "id"], name="audit_campaign_created"),
            # A workspace's log, newest first.
            models.Index(fields=["workspace", "created_at", "id"], name="audit_workspace_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=Action.values), name="audit_action_valid"
            ),
        ]

    def __str__(self) -> str:
        subject = self.campaign_name or "workspace"
        return f"{subject}: {self.get_action_display()} by {self.actor_display}"

    @property
    def actor_display(self) -> str:
        """The actor's name, or "system" for an event without a user."""
        return self.actor_name or "system"


def record(campaign: Campaign, action: Action, user: Any = None, detail: str = "") -> AuditEvent:
    """Insert an event for `campaign`. A `user` of None, or an anonymous one, is the system.

    A DELETED event is stored without the campaign key, because its row is
    gone or goes in the same transaction, and the detail names the old id.
    """
    actor = user if user is not None and user.is_authenticated else None
    deleted = action == Action.DELETED
    if deleted:
        detail = f"campaign #{campaign.pk}" + (f" {detail}" if detail else "")
    return AuditEvent.objects.create(
        workspace_id=campaign.workspace_id,
        campaign=None if deleted else campaign,
        campaign_name=campaign.name,
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        detail=detail[:DETAIL_MAX_LENGTH],
    )


def record_workspace(
    workspace: Workspace, action: Action, user: Any = None, detail: str = ""
) -> AuditEvent:
    """Insert an event for a change to the workspace itself, such as a new member."""
    actor = user if user is not None and user.is_authenticated else None
    return AuditEvent.objects.create(
        workspace=workspace,
        campaign=None,
        campaign_name="",
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        detail=detail[:DETAIL_MAX_LENGTH],
    )


def mask_address(address: str) -> str:
    """Hide most of an email address or phone number: "a…@example.com", "+…01".

    Enough to tell test addresses apart in the log without storing them.
    """
    local, at, domain = address.partition("@")
    if at:
        return f"{local[:1]}…@{domain}"
    return f"{address[:1]}…{address[-2:]}" if len(address) > 3 else "…"
