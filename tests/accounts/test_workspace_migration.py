"""The migrations that put data from before workspaces into one workspace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# Each app's last migration before workspaces, and accounts before it had any.
BEFORE = [
    ("campaigns", "0011_recipient_channel"),
    ("suppressions", "0001_initial"),
    ("audit", "0001_initial"),
    ("accounts", None),
]


@pytest.fixture
def old_apps() -> Iterator[Any]:
    """Migrate the test database back to before workspaces; forward again afterwards."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    try:
        yield executor.loader.project_state(
            [(app, name) for app, name in BEFORE if name is not None]
        ).apps
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)


def migrate_forward() -> Any:
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(latest)
    return executor.loader.project_state(latest).apps


@pytest.mark.django_db(transaction=True)
def test_existing_data_moves_into_the_default_workspace(old_apps: Any) -> None:
    user_model = old_apps.get_model("auth", "User")
    ada = user_model.objects.create(username="ada")
    grace = user_model.objects.create(username="grace")
    campaign_model = old_apps.get_model("campaigns", "Campaign")
    kept = campaign_model.objects.create(name="Kept")
    gone = campaign_model.objects.create(name="Gone")
    old_apps.get_model("suppressions", "Suppression").objects.create(
        email="ada@example.com", reason="operator"
    )
    event_model = old_apps.get_model("audit", "AuditEvent")
    event_model.objects.create(campaign=kept, campaign_name="Kept", action="created")
    event_model.objects.create(campaign=gone, campaign_name="Gone", action="created")
    gone.delete()

    new_apps = migrate_forward()

    workspace = new_apps.get_model("accounts", "Workspace").objects.get()
    assert workspace.name == "Default workspace"
    memberships = new_apps.get_model("accounts", "Membership").objects
    assert set(memberships.values_list("user_id", "role")) == {
        (ada.pk, "owner"),
        (grace.pk, "owner"),
    }
    assert list(
        new_apps.get_model("campaigns", "Campaign").objects.values_list("workspace_id", flat=True)
    ) == [workspace.pk]
    suppressions = new_apps.get_model("suppressions", "Suppression").objects
    assert list(suppressions.values_list("workspace_id", flat=True)) == [workspace.pk]
    events = new_apps.get_model("audit", "AuditEvent").objects
    assert set(events.values_list("campaign_name", "workspace_id")) == {
        ("Kept", workspace.pk),
        ("Gone", workspace.pk),
    }


@pytest.mark.django_db(transaction=True)
def test_empty_installation_gets_no_workspace(old_apps: Any) -> None:
    new_apps = migrate_forward()

    # The first user or campaign creates it (accounts.models.default_workspace).
    assert not new_apps.get_model("accounts", "Workspace").objects.exists()
