"""Give every campaign a workspace.

Campaigns and users that exist before workspaces do go into one workspace,
"Default workspace", whose owners are all existing users, so that nobody
loses a campaign they could open before. A new installation gets the same
workspace when its first user or campaign is created (accounts.models.default_workspace).
The column becomes NOT NULL in the next migration: PostgreSQL refuses to alter
a table in the transaction that queued foreign key checks on it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DEFAULT_WORKSPACE_NAME = "Default workspace"


def fill_workspaces(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    Workspace = apps.get_model("accounts", "Workspace")
    Membership = apps.get_model("accounts", "Membership")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    if not Campaign.objects.exists() and not User.objects.exists():
        return
    workspace = Workspace.objects.order_by("created_at", "id").first()
    if workspace is None:
        workspace = Workspace.objects.create(name=DEFAULT_WORKSPACE_NAME)
    Campaign.objects.filter(workspace__isnull=True).update(workspace=workspace)
    members = set(Membership.objects.filter(workspace=workspace).values_list("user_id", flat=True))
    Membership.objects.bulk_create(
        Membership(workspace=workspace, user_id=user_id, role="owner")
        for user_id in User.objects.values_list("pk", flat=True)
        if user_id not in members
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("campaigns", "0011_recipient_channel"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="workspace",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="campaigns",
                to="accounts.workspace",
            ),
        ),
        migrations.RunPython(fill_workspaces, migrations.RunPython.noop),
    ]
