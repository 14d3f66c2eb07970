"""Give every audit event a workspace: its campaign's, or the oldest workspace's.

Events whose campaign was deleted go to the oldest workspace, which
campaigns/0012 made the home of every campaign created before workspaces.
The column becomes NOT NULL in the next migration.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery

DEFAULT_WORKSPACE_NAME = "Default workspace"


def fill_workspaces(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    Campaign = apps.get_model("campaigns", "Campaign")
    Workspace = apps.get_model("accounts", "Workspace")
    AuditEvent.objects.filter(campaign__isnull=False).update(
        workspace=Subquery(
            Campaign.objects.filter(pk=OuterRef("campaign_id")).values("workspace_id")[:1]
        )
    )
    orphans = AuditEvent.objects.filter(workspace__isnull=True)
    if not orphans.exists():
        return
    workspace = Workspace.objects.order_by("created_at", "id").first()
    if workspace is None:
        workspace = Workspace.objects.create(name=DEFAULT_WORKSPACE_NAME)
    orphans.update(workspace=workspace)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("audit", "0001_initial"),
        ("campaigns", "0013_campaign_workspace_not_null"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="workspace",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="audit_events",
                to="accounts.workspace",
            ),
        ),
        migrations.RunPython(fill_workspaces, migrations.RunPython.noop),
    ]
