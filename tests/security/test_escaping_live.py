"""Every live update shows hostile names, emails and other user content as text.

The Turbo Streams come from the server-sent-events views under uvicorn, read
as a browser reads them. The cases are the campaign page's first event
(header, rows and import panel), a row update after a delivery outcome, an
import panel update, and the campaigns index's summary row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from campaigns.models import Campaign, Recipient
from live import broadcasts, streams
from tests.conftest import StreamListener
from tests.factories import session_cookie
from tests.live.sse import EventStream
from tests.outcomes import set_outcome
from tests.security.hostile import (
    PAYLOAD_IDS,
    PAYLOADS,
    SPECIAL_EMAIL,
    Hostile,
    assert_shown_escaped,
    make_hostile,
)

pytestmark = pytest.mark.django_db(transaction=True)

Listen = Callable[[Campaign], StreamListener]


@pytest.fixture
def hostile(
    request: pytest.FixtureRequest, settings: Any, tmp_path: Path, listen: Listen
) -> Hostile:
    """The stored objects for the payload in `request.param`."""
    folder = tmp_path / "imports"
    folder.mkdir()
    settings.IMPORT_FILES_DIR = folder
    stored = make_hostile(request.param, folder)
    # The listener deletes the campaign's live-update stream after the test.
    listen(stored.campaign)
    return stored


def campaign_stream(app_server: str, hostile: Hostile) -> EventStream:
    ids = f"{hostile.recipient.pk},{hostile.stored_email.pk}"
    return EventStream(
        app_server, f"/campaigns/{hostile.campaign.pk}/stream?ids={ids}", session_cookie()
    )


@pytest.mark.parametrize("hostile", PAYLOADS, ids=PAYLOAD_IDS, indirect=True)
def test_campaign_snapshot_escapes_content(app_server: str, hostile: Hostile) -> None:
    stream = campaign_stream(app_server, hostile)
    try:
        snapshot = stream.start()
    finally:
        stream.close()

    # It should carry the header, both rows and the import panel.
    assert snapshot.targets == [
        f"{hostile.campaign.dom_id}_header",
        hostile.recipient.dom_id,
        hostile.stored_email.dom_id,
        hostile.mapping_import.dom_id,
    ]
    shown = [hostile.payload, hostile.stored_email.email, SPECIAL_EMAIL]
    assert_shown_escaped(snapshot.data, shown)


@pytest.mark.parametrize("hostile", PAYLOADS, ids=PAYLOAD_IDS, indirect=True)
def test_row_update_escapes_content(app_server: str, hostile: Hostile) -> None:
    stream = campaign_stream(app_server, hostile)
    try:
        stream.start()
        row = hostile.stored_email
        assert set_outcome(row, Recipient.Status.FAILED, f"rejected: {hostile.payload}")
        row.refresh_from_db()
        broadcasts.broadcast_recipients(hostile.campaign.pk, [row])

        update = stream.events_until(
            lambda events: any(row.dom_id in event.targets for event in events)
        )[-1]
    finally:
        stream.close()

    assert_shown_escaped(update.data, [row.email, f"rejected: {hostile.payload}"])


@pytest.mark.parametrize("hostile", PAYLOADS, ids=PAYLOAD_IDS, indirect=True)
def test_import_panel_update_escapes_content(app_server: str, hostile: Hostile) -> None:
    stream = campaign_stream(app_server, hostile)
    try:
        stream.start()
        streams.publish_import(hostile.campaign.pk, hostile.mapping_import.pk)

        update = stream.events_until(
            lambda events: any(hostile.mapping_import.dom_id in e.targets for e in events)
        )[-1]
    finally:
        stream.close()

    assert_shown_escaped(update.data, [hostile.payload])


@pytest.mark.parametrize("hostile", PAYLOADS, ids=PAYLOAD_IDS, indirect=True)
def test_index_row_escapes_campaign_name(app_server: str, hostile: Hostile) -> None:
    stream = EventStream(
        app_server, f"/campaigns/stream?ids={hostile.campaign.pk}", session_cookie()
    )
    try:
        first = stream.next_event()
    finally:
        stream.close()

    assert first.targets == [f"{hostile.campaign.dom_id}_summary"]
    assert_shown_escaped(first.data, [hostile.payload])
