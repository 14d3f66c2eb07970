"""Message content: rendering, the template sandbox, SMS size and the form's content fields."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from campaigns.content import (
    recipient_fields,
    render_message,
    sms_segments,
    validate_template,
)
from campaigns.models import Campaign
from tests.campaigns.campaign_form import existing_rows, form_data
from tests.factories import operator_workspace

MakeCampaign = Callable[..., Campaign]

ADA = {
    "name": "Ada Lovelace",
    "first_name": "Ada",
    "email": "ada@example.com",
    "phone": "+12025550101",
}


def campaign_with(**content: str) -> Campaign:
    """Return an unsaved campaign with the given content fields."""
    return Campaign(name="Content", **content)


def error_messages(source: str, *, html: bool = False) -> list[str]:
    """Return the messages of the ValidationError that `source` raises."""
    with pytest.raises(ValidationError) as raised:
        validate_template(source, html=html)
    return raised.value.messages


# Rendering


def test_render_personalises_every_part() -> None:
    campaign = campaign_with(
        email_subject="Hello {{ first_name }}",
        email_text="Dear {{ name }},\nwe write to {{ email }}.",
        email_html="<p>Dear {{ name }}</p>",
        sms_text="Hi {{ first_name }}, this is for {{ phone }}.",
    )

    message = render_message(campaign, ADA)

    assert message.subject == "Hello Ada"
    assert message.text == "Dear Ada Lovelace,\nwe write to ada@example.com."
    assert message.html == "<p>Dear Ada Lovelace</p>"
    assert message.sms == "Hi Ada, this is for +12025550101."


def test_render_escapes_html_body_only() -> None:
    fields = {**ADA, "name": "<b>Ada & Co</b>"}
    campaign = campaign_with(
        email_subject="{{ name }}",
        email_text="{{ name }}",
        email_html="<p>{{ name }}</p>",
        sms_text="{{ name }}",
    )

    message = render_message(campaign, fields)

    assert message.html == "<p>&lt;b&gt;Ada &amp; Co&lt;/b&gt;</p>"
    # Not marked safe, so a page that shows the HTML escapes it again.
    assert type(message.html) is str
    assert message.subject == "<b>Ada & Co</b>"
    assert message.text == "<b>Ada & Co</b>"
    assert message.sms == "<b>Ada & Co</b>"


def test_render_empty_parts_are_empty() -> None:
    message = render_message(campaign_with(email_text="Hi"), ADA)

    assert message.subject == ""
    assert message.html == ""
    assert message.sms == ""
    assert message.text == "Hi"


def test_render_subject_has_no_line_breaks() -> None:
    fields = {**ADA, "name": "Ada\r\nBcc: eve@example.com"}
    campaign = campaign_with(email_subject="Hi {{ name }}\n again")

    message = render_message(campaign, fields)

    assert message.subject == "Hi Ada Bcc: eve@example.com again"


def test_render_missing_field_is_empty() -> None:
    campaign = campaign_with(sms_text="Hi {{ name }}|{{ phone }}")

    message = render_message(campaign, {"phone": "+12025550101"})

    assert message.sms == "Hi |+12025550101"


def test_render_ignores_extra_fields() -> None:
    # A caller that passes more than the recipient fields exposes nothing:
    # the template cannot name them, and the context holds only the four.
    campaign = campaign_with(email_text="{{ name }}")

    message = render_message(campaign, {**ADA, "secret": "s3cret"})

    assert message.text == "Ada Lovelace"


def test_render_if_firstof_and_filters() -> None:
    campaign = campaign_with(
        email_text=(
            "{% if first_name %}Hi {{ first_name|upper }}{% else %}Hello{% endif %}, "
            "{% firstof name 'friend' %}, {{ name|default:'friend'|truncatechars:5 }}, "
            "{{ email|urlencode }}"
        )
    )

    named = render_message(campaign, ADA)
    nameless = render_message(campaign, {"email": "a+b@example.com"})

    assert named.text == "Hi ADA, Ada Lovelace, Ada …, ada%40example.com"
    assert nameless.text == "Hello, friend, frie…, a%2Bb%40example.com"


@pytest.mark.django_db
def test_recipient_fields_from_recipient(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(
        recipients=[
            {"name": "  Grace   Brewster Hopper ", "email": "grace@example.com"},
            {"phone_number": "+12025550101"},
        ]
    )
    grace, nameless = campaign.recipients.order_by("id")

    assert recipient_fields(grace) == {
        "name": "Grace   Brewster Hopper",
        "first_name": "Grace",
        "email": "grace@example.com",
        "phone": "",
        "unsubscribe_url": "",
    }
    assert recipient_fields(nameless) == {
        "name": "",
        "first_name": "",
        "email": "",
        "phone": "+12025550101",
        "unsubscribe_url": "",
    }


# The sandbox: every way out is rejected with its line


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ campaign }}", "Line 1: unknown variable “campaign”."),
        ("{{ settings.SECRET_KEY }}", "Line 1: unknown variable “settings.SECRET_KEY”."),
        ("Hi\n\n{{ recipient.password }}", "Line 3: unknown variable “recipient.password”."),
        ("{{ request }}", "Line 1: unknown variable “request”."),
        ("{{ name|default:secret }}", "Line 1: unknown variable “secret”."),
        ("{% if name %}\n{% elif user %}{% endif %}", "Line 2: unknown variable “user”."),
        ("{% if name == password %}{% endif %}", "Line 1: unknown variable “password”."),
        ("{% firstof name secret %}", "Line 1: unknown variable “secret”."),
        ("{% firstof name as greeting %}{{ greeting }}", "Line 1: unknown variable “greeting”."),
        ("{{ email.upper }}", "Line 1: “email.upper” reads an attribute or item of email"),
        ("{{ name.0 }}", "Line 1: “name.0” reads an attribute or item of name"),
        ("{{ name.__class__ }}", "Line 1: Variables and attributes may not begin with underscores"),
    ],
)
def test_sandbox_rejects_variable(source: str, expected: str) -> None:
    messages = error_messages(source)

    assert len(messages) == 1
    assert messages[0].startswith(expected)


def test_unknown_variable_message_names_fields() -> None:
    assert error_messages("{{ recipient.password }}") == [
        "Line 1: unknown variable “recipient.password”. "
        "Use name, first_name, email, phone or unsubscribe_url."
    ]


@pytest.mark.parametrize(
    "source",
    [
        "{% load static %}",
        '{% include "base.html" %}',
        '{% extends "base.html" %}',
        '{% ssi "/etc/passwd" %}',
        "{% debug %}",
        "{% csrf_token %}",
        "{% url 'campaigns:index' %}",
        "{% static 'build/application.css' %}",
        "{% block content %}{% endblock %}",
        "{% with secret=name %}{% endwith %}",
        "{% for letter in name %}{% endfor %}",
        "{% now 'Y' %}",
        "{% lorem %}",
    ],
)
def test_sandbox_rejects_tag(source: str) -> None:
    tag = source.split()[1]

    for html in (False, True):
        messages = error_messages(f"Hello\n{source}", html=html)

        assert messages == [
            f"Line 2: the tag “{tag}” is not allowed in message content. Use if or firstof."
        ]


@pytest.mark.parametrize(
    "source",
    [
        "{{ name|safe }}",
        "{{ name|ljust:'1000000000' }}",
        "{{ name|stringformat:'1000000000s' }}",
        "{{ name|pprint }}",
        "{{ name|escapejs }}",
        "{{ name|upper|center:'1000000000' }}",
        "{% if name|safe %}{% endif %}",
    ],
)
def test_sandbox_rejects_filter(source: str) -> None:
    messages = error_messages(source)

    assert len(messages) == 1
    assert messages[0].startswith("Line 1: unknown filter")
    assert "Use capfirst, default, linebreaksbr" in messages[0]


@pytest.mark.django_db
def test_stored_escape_renders_nothing() -> None:
    # Content written past the form, straight to the database, still goes
    # through the checking parser when it is rendered.
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Bypass")
    Campaign.objects.filter(pk=campaign.pk).update(
        email_text="{{ settings.SECRET_KEY }}", sms_text="Hi"
    )
    campaign.refresh_from_db()

    with pytest.raises(ValidationError) as raised:
        render_message(campaign, ADA)

    assert django_settings.SECRET_KEY not in str(raised.value)
    assert raised.value.messages == [
        "Line 1: unknown variable “settings.SECRET_KEY”. "
        "Use name, first_name, email, phone or unsubscribe_url."
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "Hi\n{% if name %}\nno end",
            "Line 2: Unclosed tag: 'if'. Looking for one of: elif, else, endif.",
        ),
        ("Hi {{ name| }}", "Line 1: Could not parse"),
        ("{{ }}", "Line 1: Empty variable tag"),
        ("\n\n{% endif %}", "Line 3: “endif” has no opening {% if %}."),
        (
            "{% if name %}{% else %}\n{% elif email %}{% endif %}",
            "Line 2: “elif” is not valid here.",
        ),
        ("{{ name|lower:'x' }}", "Line 1: lower requires 1 arguments, 2 provided"),
        ("{% if %}{% endif %}", "Line 1: Unexpected end of expression in if tag."),
    ],
)
def test_syntax_error_names_line(source: str, expected: str) -> None:
    messages = error_messages(source)

    assert len(messages) == 1
    assert messages[0].startswith(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "Hello {{ name",
            "Line 1: “{{ name” is an unclosed variable. "
            "Close it with “}}” on the same line, or remove it.",
        ),
        (
            "Hello\n{% if name",
            "Line 2: “{% if name” is an unclosed tag. "
            "Close it with “%}” on the same line, or remove it.",
        ),
        ("Hi\n\nDear {{ name }\nBye", "Line 3: “{{ name }” is an unclosed variable."),
        # Django's tags end on the line they start on.
        ("{{ first_name\n}}", "Line 1: “{{ first_name” is an unclosed variable."),
        ("{% if name %}{{ name {% endif %}", "Line 1: “{{ name” is an unclosed variable."),
        (
            "{{ name|default:'a long default that goes on and on'",
            "Line 1: “{{ name|default:'a long defaul…” is an unclosed variable.",
        ),
    ],
)
def test_unclosed_tag_rejected(source: str, expected: str) -> None:
    for html in (False, True):
        messages = error_messages(source, html=html)

        assert len(messages) == 1
        assert messages[0].startswith(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", ""),
        ("Plain text with no tags", "Plain text with no tags"),
        # Closing braces alone are text, as CSS in an HTML body needs.
        ("p { color: red }} {{ name }}} {", "p { color: red }} Ada Lovelace} {"),
        (
            "{{ name }} {{ first_name }} {{ email }} {{ phone }}",
            "Ada Lovelace Ada ada@example.com +12025550101",
        ),
        ("{# a comment #}{{ 'literal' }} {{ 3 }}", "literal 3"),
        ("{% if phone and not email %}SMS{% elif email %}Mail{% else %}None{% endif %}", "Mail"),
        ("{{ name|title|truncatewords:1|capfirst|linebreaksbr|lower }}", "ada …"),
    ],
)
def test_valid_template_accepted(source: str, expected: str) -> None:
    # validate_template raises for an invalid template; these must pass in both modes.
    validate_template(source, html=False)
    validate_template(source, html=True)

    assert render_message(campaign_with(email_text=source), ADA).text == expected


# SMS size


def test_sms_empty_text() -> None:
    info = sms_segments("")

    assert (info.length, info.encoding, info.segments) == (0, "GSM-7", 0)


def test_sms_basic_alphabet_is_gsm7() -> None:
    # Characters of the default alphabet that are not ASCII, and ASCII
    # punctuation that is in it, each count 1.
    text = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà"

    info = sms_segments(text)

    assert info.encoding == "GSM-7"
    assert info.length == len(text)
    assert info.segments == 1


def test_sms_extension_chars_count_two() -> None:
    for char in "^{}\\[~]|€\f":
        info = sms_segments(f"a{char}")

        assert info.encoding == "GSM-7", char
        assert info.length == 3, char


@pytest.mark.parametrize(
    ("text", "length", "segments"),
    [
        ("a" * 160, 160, 1),
        ("a" * 161, 161, 2),
        ("a" * 306, 306, 2),
        ("a" * 307, 307, 3),
        ("€" * 80, 160, 1),
        ("a" + "€" * 80, 161, 2),
        # The escape pair at septets 153-154 moves whole to the second part.
        ("a" * 152 + "€" + "a" * 152, 306, 3),
    ],
)
def test_sms_gsm7_segments(text: str, length: int, segments: int) -> None:
    info = sms_segments(text)

    assert info.encoding == "GSM-7"
    assert info.length == length
    assert info.segments == segments


@pytest.mark.parametrize(
    ("text", "length", "segments"),
    [
        ("á" * 70, 70, 1),
        ("á" * 71, 71, 2),
        ("á" * 134, 134, 2),
        ("á" * 135, 135, 3),
        ("a" * 69 + "ç", 70, 1),
        ("a" * 159 + "ç", 160, 3),
        ("😀" * 35, 70, 1),
        ("😀" * 35 + "a", 71, 2),
        # The surrogate pair at code units 67-68 moves whole to the second part.
        ("á" * 66 + "😀" + "á" * 66, 134, 3),
    ],
)
def test_sms_ucs2_segments(text: str, length: int, segments: int) -> None:
    info = sms_segments(text)

    assert info.encoding == "UCS-2"
    assert info.length == length
    assert info.segments == segments


# A lowercase ç is not in the GSM-7 alphabet (only Ç is), nor are a curly
# apostrophe, á or a no-break space.
@pytest.mark.parametrize("char", ["ç", "\u2019", "á", "\u00a0"])
def test_sms_one_char_outside_gsm7_switches_all(char: str) -> None:
    info = sms_segments("Hello " + char)

    assert info.encoding == "UCS-2"
    assert info.length == 7


# The campaign form


@pytest.mark.django_db
def test_form_saves_content(client: Client) -> None:
    data = form_data("Launch", [{"email": "ada@example.com"}])
    data.update(
        email_subject="Hi {{ first_name }}",
        email_text="Text for {{ name }}",
        email_html="<p>{{ name }}</p>",
        sms_text="SMS {{ phone }}",
        prefer_sms="on",
    )

    response = client.post(reverse("campaigns:create"), data)

    assert response.status_code == 303
    campaign = Campaign.objects.get()
    assert campaign.email_subject == "Hi {{ first_name }}"
    assert campaign.email_text == "Text for {{ name }}"
    assert campaign.email_html == "<p>{{ name }}</p>"
    assert campaign.sms_text == "SMS {{ phone }}"
    assert campaign.prefer_sms is True


@pytest.mark.django_db
def test_form_without_content_fields_saves_blank(client: Client) -> None:
    response = client.post(
        reverse("campaigns:create"),
        form_data("Launch", [{"name": "Ada", "email": "ada@example.com"}]),
    )

    assert response.status_code == 303
    campaign = Campaign.objects.get()
    assert campaign.email_subject == campaign.email_text == campaign.email_html == ""
    assert campaign.sms_text == ""
    assert campaign.prefer_sms is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "source", "expected"),
    [
        ("email_subject", "Hi {% load static %}", "Line 1: the tag “load” is not allowed"),
        (
            "email_text",
            "Hi\n\n{{ recipient.password }}",
            "Line 3: unknown variable “recipient.password”. "
            ""
            "Use name, first_name, email, phone or unsubscribe_url.",
        ),
        ("email_html", "<p>\n{{ email.upper }}</p>", "Line 2: “email.upper” reads an attribute"),
        ("sms_text", "Hi {% if name %}", "Line 1: Unclosed tag: &#x27;if&#x27;."),
        ("email_subject", "Hello {{ first_name }", "Line 1: “{{ first_name }” is an unclosed"),
    ],
)
def test_form_error_next_to_field(client: Client, field: str, source: str, expected: str) -> None:
    data = form_data("Launch", [{"email": "ada@example.com"}])
    data[field] = source

    response = client.post(reverse("campaigns:create"), data)

    block = _content_field_html(response.content.decode(), field)
    assert response.status_code == 422
    assert Campaign.objects.count() == 0
    assert expected in block
    assert 'aria-invalid="true"' in block


def _content_field_html(html: str, name: str) -> str:
    """Return a content field's block: from its label to the next field's label or the end."""
    start = html.index(f'for="id_{name}"')
    end = html.find("<label", start + 1)
    return html[start : end if end != -1 else len(html)]


@pytest.mark.django_db
def test_edit_rejects_content_keeps_stored(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(email_html="<p>{{ name }}</p>")
    data = form_data("Spring launch", existing_rows(campaign), initial_forms=3)
    data["email_html"] = "<p>{{ name }}</p>\n{% include 'base.html' %}"

    response = client.post(reverse("campaigns:edit", args=[campaign.pk]), data)

    assert response.status_code == 422
    assert "Line 2: the tag “include” is not allowed" in _content_field_html(
        response.content.decode(), "email_html"
    )
    campaign.refresh_from_db()
    assert campaign.email_html == "<p>{{ name }}</p>"


@pytest.mark.django_db
def test_large_edit_rejects_content(
    client: Client, make_campaign: MakeCampaign, settings: Settings
) -> None:
    # The edit page of a campaign too large for the nested rows uses the same form.
    settings.MAX_RECIPIENT_ROWS = 2
    campaign = make_campaign()
    url = reverse("campaigns:edit", args=[campaign.pk])

    rejected = client.post(
        url, {"name": "Spring launch", "recipients_in_table": "1", "sms_text": "{{ campaign }}"}
    )
    accepted = client.post(
        url, {"name": "Spring launch", "recipients_in_table": "1", "sms_text": "Hi {{ name }}"}
    )

    assert rejected.status_code == 422
    assert "Line 1: unknown variable “campaign”" in _content_field_html(
        rejected.content.decode(), "sms_text"
    )
    assert accepted.status_code == 303
    campaign.refresh_from_db()
    assert campaign.sms_text == "Hi {{ name }}"


@pytest.mark.django_db
def test_edit_page_shows_stored_content(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(email_subject="Hi {{ first_name }}", sms_text="<SMS & text>")

    html = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()

    assert 'value="Hi {{ first_name }}"' in html
    assert "&lt;SMS &amp; text&gt;</textarea>" in html
    assert reverse("campaigns:preview", args=[campaign.pk]) in html


@pytest.mark.django_db
def test_model_validation_covers_admin() -> None:
    # The admin's form runs the model's validators, as the campaign form does.
    campaign = Campaign(name="Admin", email_text="{{ campaign.name }}", sms_text="{% debug %}")

    with pytest.raises(ValidationError) as raised:
        campaign.full_clean()

    errors = raised.value.message_dict
    assert errors["email_text"] == [
        "Line 1: unknown variable “campaign.name”. "
        "Use name, first_name, email, phone or unsubscribe_url."
    ]
    assert errors["sms_text"] == [
        "Line 1: the tag “debug” is not allowed in message content. Use if or firstof."
    ]


@pytest.mark.django_db
def test_duplicate_copies_content(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(
        email_subject="S {{ name }}",
        email_text="T",
        email_html="<p>H</p>",
        sms_text="M",
        prefer_sms=True,
    )

    copy = campaign.duplicate()

    assert copy.email_subject == "S {{ name }}"
    assert copy.email_text == "T"
    assert copy.email_html == "<p>H</p>"
    assert copy.sms_text == "M"
    assert copy.prefer_sms is True


@pytest.mark.django_db
def test_raw_insert_gets_blank_content() -> None:
    # The table's defaults let code that inserts campaigns without naming the
    # content columns keep working.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Campaign._meta.db_table}"
            " (workspace_id, name, status, created_at, pause_reason, processed_since_resume,"
            " failed_since_resume) VALUES (%s, 'Raw', 'pending', now(), '', 0, 0) RETURNING id",
            [operator_workspace().pk],
        )
        row = cursor.fetchone()
    assert row is not None

    campaign = Campaign.objects.get(pk=row[0])
    assert campaign.email_subject == campaign.email_text == campaign.email_html == ""
    assert campaign.sms_text == ""
    assert campaign.prefer_sms is False
