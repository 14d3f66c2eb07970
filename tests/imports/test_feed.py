"""The campaign feed sends an import's panel when the import announces progress."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from campaigns.models import Campaign
from imports.models import RecipientImport
from live import streams
from tests.imports.conftest import make_import
from tests.live.sse import Message
from tests.live.test_feeds import ViewerFactory, run  # noqa: F401 (the fixture, by name)

pytestmark = pytest.mark.django_db(transaction=True)


def shows_import(recipient_import: RecipientImport, rows_read: int) -> Callable[[Message], bool]:
    """A condition: the message replaces the import's panel with one that shows `rows_read`."""

    def condition(message: Message) -> bool:
        return recipient_import.dom_id in message.targets and (
            f'<dd data-import-count="read">{rows_read}</dd>' in message.data
        )

    return condition


def test_feed_sends_import_panel(
    make_campaign: Callable[..., Campaign],
    import_dir: Path,
    run: Any,  # noqa: F811
) -> None:
    campaign = make_campaign()
    recipient_import = make_import(campaign, import_dir, status="running", rows_read=3)

    async def scenario(open_viewer: ViewerFactory) -> None:
        viewer = open_viewer(campaign, [])
        first = await viewer.start()
        # The current state includes the panel of the import the page shows.
        assert shows_import(recipient_import, 3)(first)

        await sync_to_async(RecipientImport.objects.filter(pk=recipient_import.pk).update)(
            rows_read=250, rows_valid=240, rows_invalid=10
        )
        streams.publish_import(campaign.pk, recipient_import.pk)

        message = await viewer.read_until(shows_import(recipient_import, 250))
        assert ("", recipient_import.dom_id) in message.streams
        assert '<dd data-import-count="invalid" class="text-rose-700">10</dd>' in message.data

    run(scenario)


def test_feed_ignores_other_campaigns_import(
    make_campaign: Callable[..., Campaign],
    import_dir: Path,
    run: Any,  # noqa: F811
) -> None:
    campaign = make_campaign()
    other = make_campaign(name="Other")
    foreign = make_import(other, import_dir, status="running")

    async def scenario(open_viewer: ViewerFactory) -> None:
        viewer = open_viewer(campaign, [])
        await viewer.start()
        # An entry naming another campaign's import renders nothing of it.
        streams.publish_import(campaign.pk, foreign.pk)
        streams.publish_refresh(campaign.pk)

        await viewer.read_until(lambda m: "refresh" in m.data)
        assert all(foreign.dom_id not in m.data for m in viewer.messages)

    run(scenario)
