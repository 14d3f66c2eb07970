import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0012_campaign_workspace"),
    ]

    operations = [
        migrations.AlterField(
            model_name="campaign",
            name="workspace",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="campaigns",
                to="accounts.workspace",
            ),
        ),
    ]
