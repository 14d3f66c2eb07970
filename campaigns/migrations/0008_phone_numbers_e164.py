"""Store existing phone numbers in E.164, as the form and the import now do.

Earlier versions kept a number as typed, less its separators ("2025550101").
Numbers that parse as valid in PHONE_DEFAULT_REGION are rewritten in E.164,
so that duplicates of them are found; a number whose E.164 form another
recipient of the same campaign already has is left as it was, and so is
every number that does not parse.
"""

from django.db import migrations

BATCH_SIZE = 2000


def to_e164(apps, schema_editor):
    from campaigns.normalization import InvalidContact, clean_phone

    recipient_model = apps.get_model("campaigns", "Recipient")
    # Numbers already in E.164 need no work; this skips them in SQL.
    candidates = (
        recipient_model.objects.exclude(phone_number="")
        .exclude(phone_number__regex=r"^\+[0-9]+$")
        .only("id", "campaign_id", "phone_number")
        .order_by("id")
    )
    changed = []
    # Numbers given to recipients in this run, which the database has not
    # seen yet when two of a campaign's numbers become the same one.
    given: set[tuple[int, str]] = set()
    for recipient in candidates.iterator(chunk_size=BATCH_SIZE):
        try:
            number = clean_phone(recipient.phone_number)
        except InvalidContact:
            continue
        key = (recipient.campaign_id, number)
        taken = (
            key in given
            or recipient_model.objects.filter(
                campaign_id=recipient.campaign_id, phone_number=number
            ).exists()
        )
        if number != recipient.phone_number and not taken:
            recipient.phone_number = number
            given.add(key)
            changed.append(recipient)
        if len(changed) >= BATCH_SIZE:
            recipient_model.objects.bulk_update(changed, ["phone_number"])
            changed = []
    if changed:
        recipient_model.objects.bulk_update(changed, ["phone_number"])


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0007_recipient_campaign_id_index")]

    operations = [migrations.RunPython(to_e164, migrations.RunPython.noop)]
