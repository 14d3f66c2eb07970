"""One campaign through two uvicorn processes and three Celery worker processes.

This is the deployment that docs/scale-out.md describes, shrunk onto one
host: every process is separate and shares only PostgreSQL and Redis. The
operator dispatches through the first web process while the second serves
the campaign's page and live stream. Transient failures on first attempts
make the workers schedule retries, which any worker may pick up.

The test checks what a deployment of many processes must keep. The
provider delivered each recipient exactly once, and each recipient has one
`sent` attempt and a final status. The campaign was started and completed
once. The header counts, which triggers maintain, match the rows.
"""

from __future__ import annotations

import html
import http.client
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import pytest
from django.db.models import Count, Q
from django.urls import reverse

from audit.models import Action, AuditEvent
from campaigns.models import Campaign, DeliveryAttempt, Recipient
from campaigns.views import RECIPIENTS_PER_PAGE
from tests.factories import session_cookie
from tests.faults.cluster import DispatchCluster, wait_for
from tests.faults.conftest import campaign_status
from tests.faults.providers import (
    DELAY_MAX_VARIABLE,
    DELAY_MIN_VARIABLE,
    TRANSIENT_EVERY_VARIABLE,
    DeliveryRecords,
)
from tests.live.sse import parse_message
from tests.servers import AppServer

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

RECIPIENTS = 600
WEB_PROCESSES = 2
WORKER_PROCESSES = 3
# Each worker runs two task threads (start_worker's default), so six loops
# occupy every thread of the three workers.
LOOPS_PER_CAMPAIGN = 6
# Recipients whose id is a multiple of this fail transiently on their first attempt.
TRANSIENT_EVERY = 7

WORKER_SETTINGS = {
    "DISPATCH_WORKERS_PER_CAMPAIGN": str(LOOPS_PER_CAMPAIGN),
    # Small batches and few delivery threads per loop spread the 600
    # recipients over all six loops rather than the first three to claim.
    "DISPATCH_BATCH_SIZE": "20",
    "DELIVERY_CONCURRENCY": "4",
    DELAY_MIN_VARIABLE: "0.05",
    DELAY_MAX_VARIABLE: "0.15",
    TRANSIENT_EVERY_VARIABLE: str(TRANSIENT_EVERY),
    "DELIVERY_RETRY_BASE_SECONDS": "0.5",
    "DELIVERY_RETRY_MAX_SECONDS": "1",
    # No worker dies here, so no claim should ever expire. The fault tests'
    # lease of 3 s could run out on a busy 2-core machine and requeue a live
    # claim, which is the documented case of a repeat, not the one tested.
    "DELIVERY_LEASE_SECONDS": "30",
}

# From the dispatch POST to the completed campaign. Worker loops finished in
# about 4 s on a 2-core machine at a load average of 5, so the rest is room
# for slower or busier hosts.
FINISH_TIMEOUT_SECONDS = 120.0
# From the completion in the database to the header that says so on the stream.
STREAM_TIMEOUT_SECONDS = 30.0
# Maximum wait for one line of the stream, above the 15 s keep-alive interval.
STREAM_READ_TIMEOUT_SECONDS = 40.0
REQUEST_TIMEOUT_SECONDS = 30.0

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
STREAM_SOURCE = re.compile(r'<turbo-stream-source id="[^"]+" src="([^"]+)"')
ROW_STATUS = re.compile(r'<tr id="recipient_(\d+)" data-status="(\w+)"')
COMPLETED_HEADER = 'data-campaign-status="completed"'


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: str


def request(
    server: AppServer,
    method: str,
    path: str,
    headers: dict[str, str],
    body: str | None = None,
) -> Response:
    """Send one HTTP request to `server` and read the whole response."""
    connection = http.client.HTTPConnection(
        urlsplit(server.base_url).netloc, timeout=REQUEST_TIMEOUT_SECONDS
    )
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read().decode())
    finally:
        connection.close()


def dispatch_through(server: AppServer, campaign: Campaign, cookie: str) -> Response:
    """Press Dispatch as a browser does: read the page's CSRF token, then POST the form."""
    page = request(server, "GET", campaign.get_absolute_url(), {"Cookie": cookie})
    assert page.status == 200, page.body[:500]
    token = CSRF_FIELD.search(page.body)
    assert token is not None, "the campaign page has no Dispatch form with a CSRF token"
    csrf_cookie = next(
        value.split(";")[0]
        for value in page.headers.get_all("Set-Cookie") or []
        if value.startswith("csrftoken=")
    )
    return request(
        server,
        "POST",
        reverse("campaigns:dispatch", args=[campaign.pk]),
        {
            "Cookie": f"{cookie}; {csrf_cookie}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        urlencode({"csrfmiddlewaretoken": token.group(1)}),
    )


@dataclass
class StreamWatcher:
    """A campaign page's live stream, read in a thread of its own, as a browser reads it.

    It keeps the newest status of each row it receives and sets `completed`
    once a header event shows the campaign completed.
    """

    server: AppServer
    path: str
    cookie: str
    completed: threading.Event = field(default_factory=threading.Event)
    row_statuses: dict[int, str] = field(default_factory=dict)
    events: int = 0
    error: BaseException | None = None

    def start(self) -> None:
        self.connection = http.client.HTTPConnection(
            urlsplit(self.server.base_url).netloc, timeout=STREAM_READ_TIMEOUT_SECONDS
        )
        self.connection.request(
            "GET", self.path, headers={"Accept": "text/event-stream", "Cookie": self.cookie}
        )
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        lines: list[str] = []
        try:
            while not self.completed.is_set():
                raw = self.response.readline()
                if not raw:
                    raise AssertionError("the stream ended before the campaign completed")
                line = raw.decode().removesuffix("\n")
                if line:
                    lines.append(line)
                    continue
                if lines:
                    self._absorb(parse_message(lines).data)
                    lines = []
        except BaseException as exc:  # reported by the test's assertions
            if not self.completed.is_set():
                self.error = exc

    def _absorb(self, data: str) -> None:
        if not data:
            return
        self.events += 1
        for recipient_id, status in ROW_STATUS.findall(data):
            self.row_statuses[int(recipient_id)] = status
        if COMPLETED_HEADER in data:
            self.completed.set()

    def close(self) -> None:
        self.connection.close()
        self.thread.join(timeout=STREAM_READ_TIMEOUT_SECONDS)


def test_web_and_workers_share_campaign(
    create_campaign: Callable[..., Campaign],
    dispatch_cluster: Callable[..., DispatchCluster],
    web_servers: Callable[[int], list[AppServer]],
    delivery_records: DeliveryRecords,
) -> None:
    dispatcher, viewer = web_servers(WEB_PROCESSES)
    cluster = dispatch_cluster(workers=WORKER_PROCESSES, environment=WORKER_SETTINGS)
    campaign = create_campaign(RECIPIENTS)
    cookie = session_cookie()["Cookie"]
    cluster.wait_until_ready()

    # The second web process serves the page, and its stream follows the
    # campaign from the position that the page was read at.
    page = request(viewer, "GET", campaign.get_absolute_url(), {"Cookie": cookie})
    assert page.status == 200
    source = STREAM_SOURCE.search(page.body)
    assert source is not None, "the campaign page has no live stream source"
    visible_ids = {int(recipient_id) for recipient_id, _ in ROW_STATUS.findall(page.body)}
    assert len(visible_ids) == RECIPIENTS_PER_PAGE
    watcher = StreamWatcher(viewer, html.unescape(source.group(1)), cookie)
    watcher.start()
    try:
        response = dispatch_through(dispatcher, campaign, cookie)
        assert response.status == 303
        assert response.headers["Location"] == campaign.get_absolute_url()

        wait_for(
            lambda: campaign_status(campaign) == Campaign.Status.COMPLETED,
            FINISH_TIMEOUT_SECONDS,
            lambda: f"the campaign did not complete: {campaign.progress()}",
            cluster,
        )
        # The header may lag the database by one header interval.
        stream_caught_up = watcher.completed.wait(STREAM_TIMEOUT_SECONDS)
    finally:
        watcher.close()

    # Every recipient should end sent, and the provider should have delivered
    # each exactly once.
    recipient_ids = set(campaign.recipients.values_list("id", flat=True))
    statuses = Counter(campaign.recipients.values_list("status", flat=True))
    assert statuses == {Recipient.Status.SENT: RECIPIENTS}
    counts = delivery_records.counts(campaign.pk)
    assert set(counts) == recipient_ids
    assert {pk: count for pk, count in counts.items() if count != 1} == {}

    # Each recipient should have exactly one sent attempt, and a transient
    # error first when its id is a multiple of TRANSIENT_EVERY.
    attempts = (
        DeliveryAttempt.objects.filter(campaign=campaign)
        .values("recipient_id")
        .annotate(
            sent=Count("pk", filter=Q(outcome=DeliveryAttempt.Outcome.SENT)),
            transient=Count("pk", filter=Q(outcome=DeliveryAttempt.Outcome.TRANSIENT_ERROR)),
            other=Count(
                "pk",
                filter=~Q(
                    outcome__in=[
                        DeliveryAttempt.Outcome.SENT,
                        DeliveryAttempt.Outcome.TRANSIENT_ERROR,
                    ]
                ),
            ),
        )
    )
    by_recipient = {row["recipient_id"]: row for row in attempts}
    assert set(by_recipient) == recipient_ids
    assert {pk: row["sent"] for pk, row in by_recipient.items() if row["sent"] != 1} == {}
    assert {pk: row["other"] for pk, row in by_recipient.items() if row["other"]} == {}
    unexpected_transient = {
        pk: row["transient"]
        for pk, row in by_recipient.items()
        if row["transient"] != (1 if pk % TRANSIENT_EVERY == 0 else 0)
    }
    assert unexpected_transient == {}

    # Each worker process should have delivered a share.
    by_worker = delivery_records.by_worker(campaign.pk)
    assert set(by_worker) == {f"worker-{number}" for number in range(1, WORKER_PROCESSES + 1)}

    # The campaign should have been dispatched, started and completed once.
    dispatched = AuditEvent.objects.filter(campaign=campaign, action=Action.DISPATCHED)
    assert dispatched.count() == 1
    assert cluster.count_in_logs(f"campaign {campaign.pk}: dispatch started$") == 1
    completions_by_loops = cluster.count_in_logs(f"campaign {campaign.pk}: completed$")
    completions_by_sweep = cluster.count_in_logs(
        rf"sweep: .*completed campaigns \[[^\]]*\b{campaign.pk}\b"
    )
    completions = completions_by_loops + completions_by_sweep
    assert completions == 1, (
        f"completed {completions_by_loops} times by a worker loop and "
        f"{completions_by_sweep} times by the sweep"
    )
    campaign.refresh_from_db()
    assert campaign.completed_at is not None
    assert campaign.started_at is not None
    assert campaign.started_at <= campaign.completed_at

    # The counts that the header shows should match the rows.
    progress = campaign.progress()
    assert progress.sent == RECIPIENTS
    assert progress.total == RECIPIENTS
    assert progress.processed == RECIPIENTS

    # The second web process's stream should have shown the completion and
    # the final status of every row on its page.
    assert watcher.error is None
    assert stream_caught_up, f"no completed header in {watcher.events} stream events"
    assert watcher.row_statuses == {pk: Recipient.Status.SENT for pk in visible_ids}
