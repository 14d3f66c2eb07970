"""Build the campaign form's POST data and cut the rendered form into rows and fields.

The form is one campaign name plus an inline formset of recipient rows whose
prefix is `recipients`, so a browser posts `recipients-N-<field>` per row next
to the formset's management fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from campaigns.models import Campaign

PREFIX = "recipients"
ROW_FIELDS = ("name", "email", "phone_number", "id")


def form_data(
    name: str | None,
    rows: Sequence[Mapping[str, object]],
    initial_forms: int = 0,
) -> dict[str, str]:
    """Return the POST data a browser sends for `name` and `rows`.

    A row maps field names to values. A missing field is posted empty, and a
    true `DELETE` posts the row's delete checkbox as checked. `name=None` leaves
    the campaign name out of the data altogether.
    """
    data = {
        f"{PREFIX}-TOTAL_FORMS": str(len(rows)),
        f"{PREFIX}-INITIAL_FORMS": str(initial_forms),
        f"{PREFIX}-MIN_NUM_FORMS": "1",
        f"{PREFIX}-MAX_NUM_FORMS": "1000",
    }
    if name is not None:
        data["name"] = name
    for index, row in enumerate(rows):
        for field in ROW_FIELDS:
            data[f"{PREFIX}-{index}-{field}"] = str(row.get(field, ""))
        if row.get("DELETE"):
            data[f"{PREFIX}-{index}-DELETE"] = "on"
    return data


def existing_rows(campaign: Campaign) -> list[dict[str, object]]:
    """Return the campaign's recipients as rows, as the edit page shows them."""
    return [
        {
            "id": recipient.pk,
            "name": recipient.name,
            "email": recipient.email,
            "phone_number": recipient.phone_number,
        }
        for recipient in campaign.recipients.order_by("id")
    ]


def field_html(html: str, input_name: str) -> str:
    """Return the innermost `<div>` around the input named `input_name`, up to its `</div>`.

    In the campaign form that div contains the input, its label and its errors,
    and nothing of any other field.
    """
    position = html.index(f'name="{input_name}"')
    start = html.rindex("<div", 0, position)
    end = html.index("</div>", position)
    return html[start:end]


def row_html(html: str, index: int) -> str:
    """Return the rendered recipient row `index`, from its `<div>` to the next row."""
    position = html.index(f'name="{PREFIX}-{index}-')
    start = html.rindex('<div class="recipient-row', 0, position)
    ends = [
        found
        for marker in ('<div class="recipient-row', "<template")
        if (found := html.find(marker, position)) != -1
    ]
    return html[start : min(ends)]
