"""Benchmark the campaign page's live updates while the engine delivers 1,000 recipients/s.

Run it from the project root, with PostgreSQL and Redis up and migrated, the
front end built (`bin/setup`) and Chromium at /usr/bin/chromium:

    .venv/bin/python bench/live_bench.py [--quick] [--delete-leftovers]

It creates a campaign of 60,000 recipients with a campaign rate limit of
1,000 messages per second, so that the zero-delay simulated provider takes
about 60 s, and dispatches it with 2 Celery worker processes. Meanwhile it
measures two figures and prints them with a summary table:

1. Update latency: headless Chromium follows the dispatch. The engine claims
   recipients in id order, and the table lists them in id order, so the
   browser opens the page of the table that the engine reaches about
   LEAD_SECONDS later. It waits until every row of that page is final, then
   moves on to the next. A MutationObserver on the table records when the stream replaced each row
   (performance.timeOrigin + performance.now()) together with the row's
   data-committed-at, the Unix time that the worker took right after
   committing the outcome. Latency is the difference. Both clocks are this
   machine's. Rows committed before the page's stream was open count apart,
   because their wait includes the page load.
2. Stream size: an HTTP client reads the stream of the middle page of the
   table, as its viewer's browser would, from before the dispatch until
   the campaign completes. It counts the bytes of the event stream (after
   HTTP chunked decoding), the events with data, and the messages that only
   move the stream position or keep the connection alive.

The script imports bench/dispatch_bench.py for its checks, its campaign
registry, its Celery workers and its dispatch loop, so it refuses the same
non-loopback servers, runs with DEBUG off and uses the same queue and key
names, made unique by the process id. Its own campaigns are named
`live_bench: ...`. It also starts a uvicorn server of its own on a free
loopback port, after `manage.py collectstatic`, because with DEBUG off
only the collected files are served. Before it exits, also after an error,
Ctrl-C or SIGTERM, it stops the browser, the server and the workers by PID,
deletes its campaigns and removes its Redis keys.
"""

from __future__ import annotations

import argparse
import html
import http.client
import math
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# dispatch_bench configures the environment and sets Django up when it is
# imported, so it comes before every Django import.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import dispatch_bench
from dispatch_bench import (
    BenchError,
    CampaignRegistry,
    Figure,
    Run,
    WorkerSet,
    check_redis,
    check_schema,
    create_seeded_campaign,
    delete_broker_keys,
    dispatch_and_wait,
    engine_timeout,
    print_environment,
    print_summary,
    raise_system_exit,
    remove_if_empty,
    report_leftovers,
    require_loopback_servers,
    running_workers,
    say,
    verdict,
    warm_up,
)

# isort: split
import redis
from bench_workspace import bench_member
from django.conf import settings
from django.db import connection
from django.test import Client
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, sync_playwright

from campaigns.models import Campaign
from campaigns.views import RECIPIENTS_PER_PAGE

PROJECT_ROOT = dispatch_bench.PROJECT_ROOT
CAMPAIGN_NAME_PREFIX = "live_bench:"

FULL_RECIPIENTS = 60_000
RATE_PER_SECOND = 1_000.0

# Targets.
LATENCY_TARGET_MS = 500.0
STREAM_TARGET_BYTES_PER_SECOND = 50 * 1024
# Below this share of RATE_PER_SECOND the engine did not produce the load
# that the targets are for, and the run counts as failed.
MIN_RATE_SHARE = 0.9

# The browser opens the page that the engine reaches this many seconds
# later, which leaves time to load the page and connect its stream.
LEAD_SECONDS = 2.0
# The engine's loops claim up to DISPATCH_BATCH_SIZE recipients each, so the
# rows of one page become final over about this many seconds.
PAGE_WAIT_SECONDS = 15.0
PAGE_LOAD_TIMEOUT_MS = 15_000

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # Without these, Chromium tries to reach outside hosts at startup.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

SERVER_READY_TIMEOUT_SECONDS = 60.0
SERVER_STOP_TIMEOUT_SECONDS = 10.0
PROGRESS_POLL_SECONDS = 0.1
# The final header follows the last change by up to LIVE_HEADER_INTERVAL_SECONDS.
STREAM_TAIL_SECONDS = 1.0

# An init script of the browser page. It records, on `window.__bench`, when
# the page's event source opened and, for each recipient row that a Turbo
# Stream put into the table, [committed at (Unix ms), DOM change (Unix ms)].
RECORD_ROW_CHANGES = """
window.__bench = { streamOpenAt: null, changes: [] }
const NativeEventSource = window.EventSource
window.EventSource = class extends NativeEventSource {
  constructor(...args) {
    super(...args)
    this.addEventListener("open", () => {
      window.__bench.streamOpenAt ??= performance.timeOrigin + performance.now()
    })
  }
}
const observer = new MutationObserver((mutations) => {
  const now = performance.timeOrigin + performance.now()
  for (const mutation of mutations) {
    for (const node of mutation.addedNodes) {
      if (node.nodeType === Node.ELEMENT_NODE && node.matches("tr[data-committed-at]")) {
        window.__bench.changes.push([Number(node.dataset.committedAt) * 1000, now])
      }
    }
  }
})
document.addEventListener("DOMContentLoaded", () => {
  observer.observe(document.querySelector("tbody"), { childList: true })
})
"""

ROWS_PENDING = """
() => document.querySelectorAll(
  "tbody tr[data-status='queued'], tbody tr[data-status='in_flight']"
).length === 0
"""

STREAM_OPEN = """
() => document.querySelector("turbo-stream-source")?.streamSource?.readyState === EventSource.OPEN
"""

STREAM_SOURCE = re.compile(r'<turbo-stream-source id="[^"]*" src="([^"]+)"')


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile of `values` (share 0.95 for p95), or NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


# ---------------------------------------------------------------------------
# The web server


def bench_session_key() -> str:
    """Sign the bench user in and return the key of the new session."""
    client = Client()
    client.force_login(bench_member("bench"))
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


class AppServer:
    """uvicorn serving config.asgi on a free loopback port, started and stopped by PID."""

    def __init__(self, log_dir: Path) -> None:
        self.log_path = log_dir / "uvicorn.log"
        self.process: subprocess.Popen[bytes] | None = None
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Every page and stream needs a signed-in user: a session of the
        # bench user, kept between runs, goes with each request.
        self.session_key = bench_session_key()
        self.headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={self.session_key}"}

    def start(self) -> None:
        command = [
            sys.executable, "-m", "uvicorn", "config.asgi:application",
            "--host", "127.0.0.1", "--port", str(self.port),
            # uvicorn waits for open streams on SIGTERM without this.
            "--timeout-graceful-shutdown", "2",
            "--log-level", "warning",
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            # A session of its own keeps a Ctrl-C in the terminal from
            # reaching the server: the benchmark stops it in order.
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + SERVER_READY_TIMEOUT_SECONDS
        while not self._serves_sign_in_page():
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(
                    f"uvicorn did not serve {self.base_url}/ within "
                    f"{SERVER_READY_TIMEOUT_SECONDS:.0f} s; see {self.log_path}"
                )
            time.sleep(PROGRESS_POLL_SECONDS)
        say(f"  started uvicorn PID {self.process.pid} at {self.base_url}; log {self.log_path}")

    def _serves_sign_in_page(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", "/accounts/login/")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise BenchError(
                f"uvicorn PID {self.process.pid} exited with code {self.process.returncode}; "
                f"end of {self.log_path}:\n{tail}"
            )

    def get(self, path: str) -> str:
        """GET a page of the server; returns its body. Raises BenchError unless 200."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path, headers=self.headers)
            response = connection.getresponse()
            body = response.read().decode()
        finally:
            connection.close()
        if response.status != 200:
            raise BenchError(f"GET {self.base_url}{path} returned {response.status}")
        return body

    def stop(self) -> None:
        """Stop the server by PID: SIGTERM, then SIGKILL after SERVER_STOP_TIMEOUT_SECONDS."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=SERVER_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            say(f"  uvicorn PID {self.process.pid} ignored SIGTERM; sending SIGKILL")
            self.process.kill()
            self.process.wait(timeout=SERVER_STOP_TIMEOUT_SECONDS)
        say(f"  stopped uvicorn PID {self.process.pid}")


def collect_static() -> None:
    """Copy the built front end into STATIC_ROOT, which WhiteNoise serves with DEBUG off."""
    build = PROJECT_ROOT / "static" / "build" / "application.js"
    if not build.exists():
        raise BenchError(f"{build} is missing; build the front end with `bin/setup` first")
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"manage.py collectstatic failed:\n{result.stdout}{result.stderr}")
    say(f"  collectstatic: {result.stdout.strip().splitlines()[-1]}")


# ---------------------------------------------------------------------------
# Progress, shared between threads


@dataclass
class SharedProgress:
    """The campaign's processed count, read by a thread of its own for the browser's thread.

    The browser thread runs Playwright's event loop, where Django rejects
    database queries, so it reads this instead.
    """

    campaign_id: int
    processed: int = 0
    finished: threading.Event = field(default_factory=threading.Event)

    def poll(self) -> None:
        campaign = Campaign(pk=self.campaign_id)
        try:
            while not self.finished.is_set():
                self.processed = campaign.progress().processed
                self.finished.wait(PROGRESS_POLL_SECONDS)
        finally:
            connection.close()


# ---------------------------------------------------------------------------
# Figure 1: latency in the browser


@dataclass
class LatencyResult:
    latencies_ms: list[float] = field(default_factory=list)
    # Rows committed before the page's stream was open: their wait includes
    # the page load and the stream's replay.
    before_open: int = 0
    pages: int = 0
    pages_not_final: int = 0
    error: str | None = None


class Follower(threading.Thread):
    """Headless Chromium that opens the table page the engine reaches next, page after page."""

    def __init__(
        self,
        base_url: str,
        campaign_id: int,
        total: int,
        progress: SharedProgress,
        session_key: str,
    ) -> None:
        super().__init__(name="browser", daemon=True)
        self.base_url = base_url
        self.session_key = session_key
        self.campaign_id = campaign_id
        self.total = total
        self.progress = progress
        self.stopping = threading.Event()
        self.result = LatencyResult()

    def run(self) -> None:
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS, headless=True
                )
                try:
                    context = browser.new_context()
                    # Signed in as the bench user, as the server's other requests are.
                    context.add_cookies(
                        [
                            {
                                "name": settings.SESSION_COOKIE_NAME,
                                "value": self.session_key,
                                "url": self.base_url,
                            }
                        ]
                    )
                    page = context.new_page()
                    page.add_init_script(RECORD_ROW_CHANGES)
                    self._follow(page)
                finally:
                    browser.close()
        except (PlaywrightError, OSError) as exc:
            self.result.error = f"{type(exc).__name__}: {exc}"

    def _follow(self, page: Page) -> None:
        lead = int(RATE_PER_SECOND * LEAD_SECONDS)
        while not self.stopping.is_set() and not self.progress.finished.is_set():
            target = self.progress.processed + lead
            if target >= self.total:
                return
            page_number = target // RECIPIENTS_PER_PAGE + 1
            page.goto(
                f"{self.base_url}/campaigns/{self.campaign_id}?page={page_number}",
                timeout=PAGE_LOAD_TIMEOUT_MS,
            )
            page.wait_for_function(STREAM_OPEN, timeout=PAGE_LOAD_TIMEOUT_MS)
            try:
                page.wait_for_function(ROWS_PENDING, timeout=PAGE_WAIT_SECONDS * 1000)
            except PlaywrightError:
                self.result.pages_not_final += 1
            self._record(page.evaluate("window.__bench"))

    def _record(self, recorded: dict[str, Any]) -> None:
        self.result.pages += 1
        opened_at = recorded["streamOpenAt"]
        for committed_ms, changed_ms in recorded["changes"]:
            if opened_at is None or committed_ms < opened_at:
                self.result.before_open += 1
            else:
                self.result.latencies_ms.append(changed_ms - committed_ms)


# ---------------------------------------------------------------------------
# Figure 2: one viewer's stream


@dataclass
class StreamCounts:
    events: int = 0
    largest_event_bytes: int = 0
    position_messages: int = 0
    comments: int = 0
    # (monotonic time, bytes) of every read, for the busiest second.
    reads: list[tuple[float, int]] = field(default_factory=list)


class StreamReader(threading.Thread):
    """Reads one page's event stream over HTTP and counts what arrives."""

    def __init__(self, server: AppServer, page_path: str) -> None:
        super().__init__(name="stream-reader", daemon=True)
        page_html = server.get(page_path)
        match = STREAM_SOURCE.search(page_html)
        if match is None:
            raise BenchError(f"no <turbo-stream-source> in {server.base_url}{page_path}")
        self.stream_path = html.unescape(match[1])
        self.server = server
        self.counts = StreamCounts()
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self.error: str | None = None
        self._connection: http.client.HTTPConnection | None = None

    def run(self) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", self.server.port)
        buffer = b""
        try:
            self._connection.request("GET", self.stream_path, headers=self.server.headers)
            response = self._connection.getresponse()
            if response.status != 200:
                raise BenchError(f"GET {self.stream_path} returned {response.status}")
            self.connected.set()
            while not self.stopping.is_set():
                chunk = response.read1(65536)
                if not chunk:
                    break
                self.counts.reads.append((time.monotonic(), len(chunk)))
                buffer += chunk
                *messages, buffer = buffer.split(b"\n\n")
                for message in messages:
                    self._count(message)
        except (OSError, http.client.HTTPException, BenchError) as exc:
            if not self.stopping.is_set():
                self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.connected.set()

    def _count(self, message: bytes) -> None:
        lines = message.split(b"\n")
        if any(line.startswith(b"data:") for line in lines):
            self.counts.events += 1
            self.counts.largest_event_bytes = max(self.counts.largest_event_bytes, len(message))
        elif any(line.startswith(b"id:") for line in lines):
            self.counts.position_messages += 1
        elif lines[0].startswith(b":"):
            self.counts.comments += 1

    def stop(self) -> None:
        self.stopping.set()
        if self._connection is not None and self._connection.sock is not None:
            # Unblocks the read in run().
            self._connection.sock.shutdown(socket.SHUT_RDWR)

    def bytes_between(self, start: float, end: float) -> int:
        return sum(size for at, size in self.counts.reads if start <= at <= end)

    def busiest_second(self, start: float, end: float) -> int:
        """Return the maximum number of bytes received within one second between `start` and
        `end`."""
        reads = [(at, size) for at, size in self.counts.reads if start <= at <= end]
        busiest = 0
        window = 0
        first = 0
        for at, size in reads:
            window += size
            while reads[first][0] <= at - 1.0:
                window -= reads[first][1]
                first += 1
            busiest = max(busiest, window)
        return busiest


# ---------------------------------------------------------------------------
# The run


@dataclass
class Measured:
    engine_rate: float
    seconds: float
    latency: LatencyResult
    stream: StreamReader
    stream_start: float
    stream_end: float


def create_campaign(registry: CampaignRegistry, total: int) -> Campaign:
    campaign = create_seeded_campaign(registry, "live updates", total)
    Campaign.objects.filter(pk=campaign.pk).update(rate_limit_per_second=RATE_PER_SECOND)
    campaign.refresh_from_db()
    return campaign


def measure(campaign: Campaign, total: int, server: AppServer, workers: WorkerSet) -> Measured:
    middle_page = (total // 2) // RECIPIENTS_PER_PAGE + 1
    reader = StreamReader(server, f"{campaign.get_absolute_url()}?page={middle_page}")
    progress = SharedProgress(campaign.pk)
    follower = Follower(server.base_url, campaign.pk, total, progress, server.session_key)
    say(f"  stream reader: page {middle_page}, {reader.stream_path}")
    reader.start()
    if not reader.connected.wait(PAGE_LOAD_TIMEOUT_MS / 1000) or reader.error:
        raise BenchError(f"the stream reader did not connect: {reader.error or 'timed out'}")

    poller = threading.Thread(target=progress.poll, name="progress", daemon=True)
    poller.start()
    follower.start()
    stream_start = time.monotonic()
    try:
        result = dispatch_and_wait(campaign, total, workers, engine_timeout(total), "live")
        # The final header follows the last outcome within the header interval.
        stream_end = time.monotonic() + STREAM_TAIL_SECONDS
        time.sleep(STREAM_TAIL_SECONDS)
        server.check_alive()
    finally:
        progress.finished.set()
        follower.stopping.set()
        reader.stop()
        for thread in (follower, reader, poller):
            thread.join(timeout=PAGE_WAIT_SECONDS + PAGE_LOAD_TIMEOUT_MS / 1000)
    if follower.result.error:
        raise BenchError(f"the browser failed: {follower.result.error}")
    if reader.error:
        raise BenchError(f"the stream reader failed: {reader.error}")
    return Measured(result.rate, result.seconds, follower.result, reader, stream_start, stream_end)


def report(run: Run, total: int, measured: Measured) -> None:
    engine_note = f"engine delivered {measured.engine_rate:,.0f} recipients/s"
    at_load = measured.engine_rate >= RATE_PER_SECOND * MIN_RATE_SHARE
    if not at_load:
        run.failures.append(
            f"{engine_note}, below {MIN_RATE_SHARE:.0%} of {RATE_PER_SECOND:,.0f}/s: "
            "the figures are not at the target load"
        )
    parameters = f"{total:,} recipients at {RATE_PER_SECOND:,.0f}/s, {engine_note}"

    latency = measured.latency
    p50 = percentile(latency.latencies_ms, 0.50)
    p95 = percentile(latency.latencies_ms, 0.95)
    worst = max(latency.latencies_ms, default=math.nan)
    say("Figure 1: latency from the worker's commit to the DOM change")
    say(
        f"  {len(latency.latencies_ms):,} rows on {latency.pages} pages: p50 {p50:.0f} ms, "
        f"p95 {p95:.0f} ms, max {worst:.0f} ms"
    )
    say(
        f"  not counted: {latency.before_open:,} rows committed before their page's stream "
        f"was open; {latency.pages_not_final} pages with rows still pending after "
        f"{PAGE_WAIT_SECONDS:.0f} s"
    )
    run.figures.append(
        Figure(
            1,
            "update latency, commit to DOM (p50 / p95)",
            f"{parameters}, {len(latency.latencies_ms):,} rows",
            f"{p50:.0f} / {p95:.0f} ms",
            f"p95 < {LATENCY_TARGET_MS:.0f} ms",
            verdict(run, at_load and bool(latency.latencies_ms) and p95 < LATENCY_TARGET_MS),
        )
    )

    reader = measured.stream
    seconds = measured.stream_end - measured.stream_start
    received = reader.bytes_between(measured.stream_start, measured.stream_end)
    busiest = reader.busiest_second(measured.stream_start, measured.stream_end)
    counts = reader.counts
    say("Figure 2: one viewer's stream (the middle page of the table)")
    say(
        f"  {received:,} bytes in {seconds:.1f} s = {received / seconds / 1024:.1f} KB/s "
        f"(busiest second: {busiest / 1024:.1f} KB); {counts.events:,} events = "
        f"{counts.events / seconds:.1f}/s, largest {counts.largest_event_bytes / 1024:.1f} KB; "
        f"{counts.position_messages} position messages, {counts.comments} comments"
    )
    run.figures.append(
        Figure(
            2,
            "one viewer's stream (bytes / events per s)",
            f"{parameters}, {seconds:.0f} s",
            f"{received / seconds / 1024:.1f} KB/s / {counts.events / seconds:.1f} events/s",
            f"< {STREAM_TARGET_BYTES_PER_SECOND / 1024:.0f} KB/s",
            verdict(run, at_load and received / seconds < STREAM_TARGET_BYTES_PER_SECOND),
        )
    )
    say()


def delete_redis_keys() -> None:
    """Delete the stream, lease, rate and rate-limit keys under this run's own key prefix."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:*"))
        if keys:
            client.delete(*keys)
    except redis.RedisError as exc:
        say(f"Could not delete this run's Redis keys ({exc}); they expire by themselves.")
    finally:
        client.close()


def print_parameters(total: int) -> None:
    say(
        f"  live settings: LIVE_HEADER_INTERVAL_SECONDS={settings.LIVE_HEADER_INTERVAL_SECONDS} "
        f"LIVE_EVENT_INTERVAL_SECONDS={settings.LIVE_EVENT_INTERVAL_SECONDS} "
        f"LIVE_STREAM_MAX_ENTRIES={settings.LIVE_STREAM_MAX_ENTRIES} "
        f"LIVE_UPDATES_KEEPALIVE_SECONDS={settings.LIVE_UPDATES_KEEPALIVE_SECONDS}"
    )
    say(
        f"  campaign: {total:,} recipients, rate limit {RATE_PER_SECOND:,.0f}/s for the "
        f"campaign, {RECIPIENTS_PER_PAGE} rows per page; the browser opens the page that "
        f"the engine reaches {LEAD_SECONDS:.0f} s later"
    )
    say(f"  browser: {CHROMIUM_PATH}, headless")
    say()


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure the campaign page's live updates at 1,000 recipients/s: latency "
        "from commit to DOM change in Chromium, and one viewer's stream size.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tenth of the recipients (about 6 s of delivery)"
    )
    parser.add_argument(
        "--delete-leftovers",
        action="store_true",
        help=f"first delete campaigns named '{CAMPAIGN_NAME_PREFIX} ...' that a killed run left",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    # SIGTERM exits through the finally blocks, which stop every process.
    signal.signal(signal.SIGTERM, raise_system_exit)
    run = Run(quick=arguments.quick, only={1, 2})
    total = FULL_RECIPIENTS // 10 if arguments.quick else FULL_RECIPIENTS
    registry = CampaignRegistry(CAMPAIGN_NAME_PREFIX)
    log_dir = Path(tempfile.mkdtemp(prefix="live-bench-"))
    server = AppServer(log_dir)
    redis_reached = False
    try:
        require_loopback_servers()
        check_schema()
        check_redis()
        redis_reached = True
        print_environment(run, title="Live update benchmark")
        print_parameters(total)
        report_leftovers(arguments.delete_leftovers, CAMPAIGN_NAME_PREFIX)
        collect_static()
        server.start()
        with running_workers("live", {}, registry, log_dir) as workers:
            warm_up(registry, workers, run)
            campaign = create_campaign(registry, total)
            measured = measure(campaign, total, server, workers)
        report(run, total, measured)
    except BenchError as exc:
        say(f"FAILED: {exc}")
        return 2
    finally:
        server.stop()
        registry.delete_all()
        if redis_reached:
            delete_broker_keys()
            delete_redis_keys()
        remove_if_empty(log_dir)
        if log_dir.exists():
            say(f"Logs: {log_dir}")

    print_summary(run)
    say(f"Load average at the end: {dispatch_bench.load_average()}.")
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
