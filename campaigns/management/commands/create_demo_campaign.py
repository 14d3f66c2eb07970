"""Create a demo campaign so a new user can see the whole flow in one click."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import Workspace, WorkspaceNotFound, join_workspace, workspace_for_command
from campaigns.models import Campaign, Recipient

# Made-up people. Emails use example.com, which is reserved for documentation
# (RFC 2606); phone numbers use the 555-0100 to 555-0199 range that North
# American numbering reserves for fiction.
DEMO_PEOPLE = [
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Margaret Hamilton",
    "Ken Thompson",
    "Frances Allen",
    "John McCarthy",
    "Radia Perlman",
    "Dennis Ritchie",
    "Hedy Lamarr",
    "Claude Shannon",
    "Karen Spärck Jones",
    "Tony Hoare",
    "Shafi Goldwasser",
    "Niklaus Wirth",
    "Adele Goldberg",
    "Leslie Lamport",
    "Katherine Johnson",
    "Robin Milner",
    "Sophie Wilson",
    "Butler Lampson",
    "Jean Sammet",
]

# Every FAILING_EVERY-th person gets an address at DELIVERY_FAIL_EMAIL_DOMAIN,
# which the simulated provider and the development SMTP sink (unless run with
# --no-rules) reject permanently, so the demo shows failures next to successes.
FAILING_EVERY = 6

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

# One more person, at DELIVERY_FLAKY_EMAIL_DOMAIN: the first attempt fails
# transiently and the retry succeeds, so the demo shows a retry.
FLAKY_PERSON = "Kathleen Booth"

# The demo's content, in the sandboxed template language of
# campaigns/content.py. The bodies show the unsubscribe link themselves, so
# dispatch/messages.py adds no footer of its own.
DEMO_SUBJECT = '{% firstof first_name "Hello" %}, your Campaign Dispatcher demo message'
DEMO_TEXT = """\
Hello {% firstof first_name "there" %},

This is the demo campaign of Campaign Dispatcher, addressed to
{{ name|default:"you" }} at {{ email }}.

Each recipient gets a copy of their own: the greeting and the address
above are filled in from the recipient's row when the message is built.

To stop receiving these messages: {{ unsubscribe_url }}
"""
DEMO_HTML = """\
<!DOCTYPE html>
<html lang="en">
<body style="font-family: sans-serif; line-height: 1.5">
  <p>Hello {% firstof first_name "there" %},</p>
  <p>This is the demo campaign of <strong>Campaign Dispatcher</strong>,
     addressed to {{ name|default:"you" }} at {{ email }}.</p>
  <p>Each recipient gets a copy of their own: the greeting and the address
     above are filled in from the recipient's row when the message is built.</p>
  <p style="font-size: small; color: #64748b">
    <a href="{{ unsubscribe_url }}">Unsubscribe</a> to stop receiving these messages.
  </p>
</body>
</html>
"""
DEMO_SMS = 'Hi {% firstof first_name "there" %}, this is the Campaign Dispatcher demo SMS.'


# The user that the demo prints how to sign in as.
DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = (
        "Create a pending demo campaign with an email and an SMS text and "
        f"{len(DEMO_PEOPLE) + 1} made-up recipients, a few of which fail and one of "
        "which succeeds only on retry."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default="Demo campaign", help="Campaign name.")
        parser.add_argument(
            "--workspace",
            metavar="NAME_OR_ID",
            help="The workspace of the campaign and of the demo user, by name or id; a new "
            "name creates it. Default: the oldest workspace.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            try:
                workspace, _created = workspace_for_command(options["workspace"])
            except WorkspaceNotFound as exc:
                raise CommandError(str(exc)) from None
            campaign = Campaign.objects.create(
                workspace=workspace,
                name=options["name"],
                email_subject=DEMO_SUBJECT,
                email_text=DEMO_TEXT,
                email_html=DEMO_HTML,
                sms_text=DEMO_SMS,
            )
            recipients = [
                self._recipient(campaign, number, name)
                for number, name in enumerate(DEMO_PEOPLE, start=1)
            ]
            recipients.append(self._flaky_recipient(campaign))
            Recipient.objects.bulk_create(recipients)

        total = campaign.recipients.count()
        failing = campaign.recipients.filter(
            email__endswith="@" + settings.DELIVERY_FAIL_EMAIL_DOMAIN
        ).count()
        flaky = campaign.recipients.filter(
            email__endswith="@" + settings.DELIVERY_FLAKY_EMAIL_DOMAIN
        ).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Created “{campaign.name}” with {total} recipients "
                f"({failing} set to fail, {flaky} set to fail once and succeed on retry)."
            )
        )
        password = _demo_user_password(workspace)
        self.stdout.write(
            f"Open {campaign.get_absolute_url()} on the running app "
            "(http://127.0.0.1:8000 unless bin/dev was given another PORT), sign in as "
            f"{DEMO_USERNAME} with the password {password} and press Dispatch. The "
            f"campaign is in the workspace “{workspace.name}”, which {DEMO_USERNAME} "
            "belongs to."
        )
        self.stdout.write(_email_destination())

    def _recipient(self, campaign: Campaign, number: int, name: str) -> Recipient:
        handle = name.split()[0].lower().replace("ä", "a")
        phone = f"+1202555{100 + number:04d}"
        if number % FAILING_EVERY == 0:
            email = f"{handle}@{settings.DELIVERY_FAIL_EMAIL_DOMAIN}"
        elif number % 5 == 0:
            email = ""  # phone-only recipient
        else:
            email = f"{handle}@example.com"
        if number % 4 == 0 and email:
            phone = ""  # email-only recipient
        return Recipient(campaign=campaign, name=name, email=email, phone_number=phone)

    def _flaky_recipient(self, campaign: Campaign) -> Recipient:
        # Email only, so that the email channel, and with it the sink's rule, applies.
        handle = FLAKY_PERSON.split()[0].lower()
        return Recipient(
            campaign=campaign,
            name=FLAKY_PERSON,
            email=f"{handle}@{settings.DELIVERY_FLAKY_EMAIL_DOMAIN}",
        )


def _email_destination() -> str:
    """Describe, in one line of output, where the default mailer sends the demo's emails."""
    mailer: dict[str, Any] = settings.MAILERS.get("default", {})
    backend = mailer.get("BACKEND", "")
    if backend != SMTP_BACKEND:
        return f"Emails go through {backend}, not to the local SMTP sink."
    options: dict[str, Any] = mailer.get("OPTIONS", {})
    address = f"{options.get('host', '')}:{options.get('port', '')}"
    if not _is_loopback(options.get("host", "")):
        return f"Emails go to the SMTP server at {address}, not to the local SMTP sink."
    return (
        f"Emails go to the local SMTP sink at {address}. "
        "Read them at http://127.0.0.1:8000/dev/mail/ (while DEBUG is on)."
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _demo_user_password(workspace: Workspace) -> str:
    """Give the demo user a new random password, creating the user if needed; return it.

    The user joins `workspace` if not a member yet, as its owner when it has none.

    A new password on every run keeps the one printed last valid, without
    writing a fixed password into the project.
    """
    password = secrets.token_urlsafe(12)
    user, _created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
    user.set_password(password)
    user.save(update_fields=["password"])
    join_workspace(user, workspace)
    return password
