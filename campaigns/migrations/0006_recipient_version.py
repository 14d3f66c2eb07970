from django.db import migrations, models

# Every UPDATE of a recipient raises its version by one. The engine's
# statements raise it themselves (dispatch/claims.py), which keeps this row
# trigger out of the hot path: it runs only when a statement left the
# version as it was, or set it lower, as a save() of a stale instance would.
VERSION_TRIGGER = """
CREATE FUNCTION campaigns_recipient_next_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER recipient_version
    BEFORE UPDATE ON campaigns_recipient
    FOR EACH ROW
    WHEN (NEW.version <= OLD.version)
    EXECUTE FUNCTION campaigns_recipient_next_version();
"""

DROP_VERSION_TRIGGER = """
DROP TRIGGER recipient_version ON campaigns_recipient;
DROP FUNCTION campaigns_recipient_next_version();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0005_recipient_status_page_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="recipient",
            name="version",
            field=models.BigIntegerField(default=0, db_default=0, editable=False),
        ),
        migrations.RunSQL(VERSION_TRIGGER, DROP_VERSION_TRIGGER),
    ]
