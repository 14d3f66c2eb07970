"""Give every suppression list entry a workspace.

Entries made before workspaces existed go to the oldest workspace, which
campaigns/0012 made the home of every earlier campaign. The next migration
makes the column NOT NULL and the entries unique per workspace.
"""

import django.db.models.deletion
from django.db import migrations, models

DEFAULT_WORKSPACE_NAME = "Default workspace"


def fill_workspaces(apps, schema_editor):
    Suppression = apps.get_model("suppressions", "Suppression")
    Workspace = apps.get_model("accounts", "Workspace")
    if not Suppression.objects.exists():
        return
    workspace = Workspace.objects.order_by("created_at", "id").first()
    if workspace is None:
        workspace = Workspace.objects.create(name=DEFAULT_WORKSPACE_NAME)
    Suppression.objects.filter(workspace__isnull=True).update(workspace=workspace)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("campaigns", "0013_campaign_workspace_not_null"),
        ("suppressions", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="suppression",
            name="workspace",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="suppressions",
                to="accounts.workspace",
            ),
        ),
        migrations.RunPython(fill_workspaces, migrations.RunPython.noop),
    ]
