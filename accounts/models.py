"""Workspaces and the users who belong to them.

A workspace owns campaigns (and through them their recipients and imports)
and a suppression list. A user may belong to several workspaces, each time
with a role: owners manage the members and the workspace's settings;
members create and send campaigns. Which workspace a request works in is
kept in the session (accounts/workspaces.py).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

WORKSPACE_NAME_MAX_LENGTH = 100
# The workspace that migrations and commands create when none exists yet.
DEFAULT_WORKSPACE_NAME = "Default workspace"


class InvalidWorkspaceName(ValueError):
    """A workspace name that is blank, too long or contains control characters."""


def clean_workspace_name(value: str) -> str:
    """Return the name with runs of whitespace, line breaks included, made one space.

    Raises InvalidWorkspaceName, with a message for the user, for a name that
    is blank, longer than WORKSPACE_NAME_MAX_LENGTH or contains other
    control or format characters.
    """
    name = " ".join(value.split())
    if not name:
        raise InvalidWorkspaceName("Enter a name for the workspace.")
    if any(unicodedata.category(char) in {"Cc", "Cf"} for char in name):
        raise InvalidWorkspaceName("A workspace name cannot contain control characters.")
    if len(name) > WORKSPACE_NAME_MAX_LENGTH:
        raise InvalidWorkspaceName(
            f"A workspace name has at most {WORKSPACE_NAME_MAX_LENGTH} characters."
        )
    return name


class Workspace(models.Model):
    name = models.CharField(max_length=WORKSPACE_NAME_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(name__regex=r"\S"), name="workspace_name_not_blank"),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MEMBER = "member", "Member"


class Membership(models.Model):
    """A user's place in a workspace."""

    Role = Role

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    # No index of its own: membership_user_workspace starts with user_id.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        db_index=False,
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["workspace__name", "user__username"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "workspace"],
                name="membership_user_workspace",
                violation_error_message="This user is already a member of the workspace.",
            ),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


def default_workspace() -> Workspace:
    """Return the oldest workspace, creating the default one when there is none."""
    with transaction.atomic(), connection.cursor() as cursor:
        # A transaction-level advisory lock, so that two callers at the same
        # moment create one workspace between them, not two.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('accounts.default_workspace'))")
        workspace = Workspace.objects.order_by("created_at", "id").first()
        if workspace is None:
            workspace = Workspace.objects.create(name=DEFAULT_WORKSPACE_NAME)
    return workspace


def join_workspace(
    user: Any, workspace: Workspace, role: str | None = None
) -> tuple[Membership, bool]:
    """Make `user` a member of `workspace`; return the membership and whether it is new.

    Without a `role`, the first member of a workspace becomes its owner and
    later ones become members. An existing membership keeps its role unless
    `role` is given.
    """
    with transaction.atomic():
        locked = Workspace.objects.select_for_update().get(pk=workspace.pk)
        membership = Membership.objects.filter(workspace=locked, user=user).first()
        if membership is not None:
            if role is not None and membership.role != role:
                membership.role = role
                membership.save(update_fields=["role"])
            return membership, False
        if role is None:
            has_owner = Membership.objects.filter(workspace=locked, role=Role.OWNER).exists()
            role = Role.MEMBER if has_owner else Role.OWNER
        return Membership.objects.create(workspace=locked, user=user, role=role), True


class WorkspaceNotFound(LookupError):
    """A --workspace option that names no workspace, or several."""


def workspace_for_command(name_or_id: str | None) -> tuple[Workspace, bool]:
    """Find the workspace that a management command's --workspace option names.

    Takes a workspace id or a name: a value made of digits only is an id.
    None means the oldest workspace. A name, with its whitespace tidied as
    the web form does, that no workspace has creates that workspace. Returns
    the workspace and whether it was created. Raises WorkspaceNotFound, with
    a message for the user, for an unknown id, an invalid name, or a name
    that several workspaces share.
    """
    if name_or_id is None:
        before = Workspace.objects.exists()
        return default_workspace(), not before
    value = name_or_id.strip()
    if value.isascii() and value.isdigit():
        workspace = Workspace.objects.filter(pk=int(value)).first()
        if workspace is None:
            raise WorkspaceNotFound(f"No workspace has the id {value}.")
        return workspace, False
    try:
        value = clean_workspace_name(value)
    except InvalidWorkspaceName as exc:
        raise WorkspaceNotFound(str(exc)) from None
    with transaction.atomic(), connection.cursor() as cursor:
        # The lock of default_workspace, so that two commands at the same
        # moment create one workspace of a name between them.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('accounts.default_workspace'))")
        found = list(Workspace.objects.filter(name=value).order_by("id"))
        if len(found) > 1:
            ids = ", ".join(str(workspace.pk) for workspace in found)
            raise WorkspaceNotFound(
                f"Several workspaces are named {value!r} (ids {ids}); give the id instead."
            )
        if found:
            return found[0], False
        return Workspace.objects.create(name=value), True
