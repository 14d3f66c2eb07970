import django.db.models.deletion
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("suppressions", "0002_suppression_workspace"),
    ]

    operations = [
        migrations.AlterField(
            model_name="suppression",
            name="workspace",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="suppressions",
                to="accounts.workspace",
            ),
        ),
        migrations.RemoveConstraint(model_name="suppression", name="suppression_unique_email"),
        migrations.RemoveConstraint(model_name="suppression", name="suppression_unique_phone"),
        migrations.AddConstraint(
            model_name="suppression",
            constraint=models.UniqueConstraint(
                models.F("workspace"),
                django.db.models.functions.text.Lower("email"),
                condition=models.Q(("email", ""), _negated=True),
                name="suppression_workspace_email",
                violation_error_message="This email address is already on the suppression list.",
            ),
        ),
        migrations.AddConstraint(
            model_name="suppression",
            constraint=models.UniqueConstraint(
                condition=models.Q(("phone", ""), _negated=True),
                fields=("workspace", "phone"),
                name="suppression_workspace_phone",
                violation_error_message="This phone number is already on the suppression list.",
            ),
        ),
    ]
