"""Create a demo campaign so a new user can see the whole flow in one click."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

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

# Every FAILING_EVERY-th person gets an address that the simulated provider
# always rejects, so the demo shows failures next to successes.
FAILING_EVERY = 6


class Command(BaseCommand):
    help = "Create a pending demo campaign of 25 made-up recipients, a few of which fail."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default="Demo campaign", help="Campaign name.")

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            campaign = Campaign.objects.create(name=options["name"])
            Recipient.objects.bulk_create(
                self._recipient(campaign, number, name)
                for number, name in enumerate(DEMO_PEOPLE, start=1)
            )
        failing = campaign.recipients.filter(
            email__endswith="@" + settings.DELIVERY_FAIL_EMAIL_DOMAIN
        ).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Created “{campaign.name}” with {len(DEMO_PEOPLE)} recipients "
                f"({failing} set to fail)."
            )
        )
        self.stdout.write(
            f"Open {campaign.get_absolute_url()} on the running app "
            "(http://127.0.0.1:8000 unless bin/dev was given another PORT) and press Dispatch."
        )

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
