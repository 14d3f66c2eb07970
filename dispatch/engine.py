"""The dispatch engine: one worker's loop over a campaign's recipients.

Any number of these loops, in any number of processes on any number of hosts,
can work on one campaign at once. Each loop:

1. claims a batch of due, queued recipients (`claims.claim_batch`), which
   marks them in flight under its claim token with a lease and chooses each
   one's channel; those whose email address or phone number is on the
   suppression list end as `suppressed` at once;
2. renders each one's message (dispatch/messages.py) and delivers it in a
   thread pool, at most `DELIVERY_CONCURRENCY` at a time, each after taking
   a token from the Redis rate limiter;
3. writes outcomes and attempts in bulk every `DISPATCH_FLUSH_INTERVAL_SECONDS`
   or `DISPATCH_FLUSH_SIZE` outcomes, with no transaction open during a
   provider call, and broadcasts the changed rows;
4. checks the campaign's status a few times a second and, once it is no longer
   processing (paused, cancelled), stops claiming and releases the claims it
   has not started;
5. when nothing is due, waits for the campaign's earliest retry if it is due
   within `retry_wait_seconds` (the sweep interval), and otherwise completes
   the campaign (one conditional UPDATE: exactly one loop wins) or leaves
   its later retries to the sweep, which wakes the campaign once one is due.

Queue messages only wake loops: a lost message is repaired by the sweep, and
a duplicate starts a loop that finds nothing to claim or shares the work. No
message is delayed (countdown or ETA): Redis delivers those again after the
visibility timeout, and kombu 5.7.0 crashes a worker that has one when Redis
restarts.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import reset_queries, transaction
from django.db.models import Count, Min
from django.utils import timezone

from audit.models import Action, record
from campaigns.content import template_fields
from campaigns.models import Campaign, DeliveryAttempt, Recipient, delivery_key
from dispatch import claims, shutdown
from dispatch.claims import Claim, Outcome
from dispatch.messages import EmptyMessage, MessageContent, build_message
from dispatch.providers import (
    Delivery,
    DeliveryError,
    OutboundMessage,
    Provider,
    get_provider,
)
from dispatch.providers.base import short_reason, traceback_with_short_message
from dispatch.rate_limit import MultiRateLimiter, RateLimitTimeout, limiter_for
from live import broadcasts, streams
from ops import context as log_context
from ops import metrics
from suppressions.models import suppressed_among

logger = logging.getLogger(__name__)

# How often a loop re-reads its campaign's status, in seconds: a pause or a
# cancel stops new deliveries from this loop within about this long.
STATUS_CHECK_SECONDS = 0.2
# While rendering a batch, how many claims go by between checks whether this
# loop's leases are due for renewal.
RENDER_LEASE_CHECK_EVERY = 20


@dataclass(frozen=True)
class EngineSettings:
    concurrency: int
    batch_size: int
    lease_seconds: float
    flush_interval: float
    flush_size: int
    max_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float
    # A loop with nothing due waits for a retry due within this many seconds
    # rather than exiting. The sweep starts later retries within about one
    # interval of their due time, so waiting longer would gain little.
    retry_wait_seconds: float

    def __post_init__(self) -> None:
        # config/settings.py checks the environment, but a caller can build
        # these directly. A batch size of 0 would make the loop claim nothing
        # and spin, and a concurrency of 0 would start no delivery.
        minimums = {
            "concurrency": 1,
            "batch_size": 1,
            "flush_size": 1,
            "max_attempts": 1,
        }
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if value < minimum:
                raise ValueError(f"invalid {name} {value!r}: expected at least {minimum}")
        for name in ("lease_seconds", "flush_interval"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"invalid {name} {value!r}: expected a number above 0")
        for name in ("retry_base_seconds", "retry_max_seconds", "retry_wait_seconds"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"invalid {name} {value!r}: expected a number of at least 0")

    @classmethod
    def from_settings(cls) -> EngineSettings:
        return cls(
            concurrency=settings.DELIVERY_CONCURRENCY,
            batch_size=settings.DISPATCH_BATCH_SIZE,
            lease_seconds=settings.DELIVERY_LEASE_SECONDS,
            flush_interval=settings.DISPATCH_FLUSH_INTERVAL_SECONDS,
            flush_size=settings.DISPATCH_FLUSH_SIZE,
            max_attempts=settings.DELIVERY_MAX_ATTEMPTS,
            retry_base_seconds=settings.DELIVERY_RETRY_BASE_SECONDS,
            retry_max_seconds=settings.DELIVERY_RETRY_MAX_SECONDS,
            retry_wait_seconds=settings.DISPATCH_SWEEP_INTERVAL_SECONDS,
        )


def retry_delay(attempt_in_round: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: about base * 2^(n-1), at most `cap`, times 0.5 to 1.5."""
    exponential = min(cap, base * 2 ** max(0, attempt_in_round - 1))
    return min(cap, exponential * rng.uniform(0.5, 1.5))


@dataclass
class LoopStats:
    delivered: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0
    suppressed: int = 0
    started: float = field(default_factory=time.monotonic)


def run_campaign(
    campaign_id: int,
    provider: Provider | None = None,
    engine_settings: EngineSettings | None = None,
) -> LoopStats:
    """Run one worker loop on the campaign until nothing is left for it to do."""
    config = engine_settings or EngineSettings.from_settings()
    loop = _Loop(campaign_id, provider or get_provider(), config)
    return loop.run()


class _Loop:
    def __init__(self, campaign_id: int, provider: Provider, config: EngineSettings) -> None:
        self.campaign_id = campaign_id
        self.provider = provider
        self.config = config
        self.stats = LoopStats()
        self.rng = random.Random()
        self.waiting: deque[Claim] = deque()
        self.running: dict[Future[Outcome | None], Claim] = {}
        self.outcomes: list[Outcome] = []
        self.last_flush = time.monotonic()
        self.last_status_check = 0.0
        self.last_lease_renewal = time.monotonic()
        self.limiter: MultiRateLimiter | None = None
        self.content: MessageContent | None = None
        self.workspace_id = 0  # the campaign's, read when the loop starts
        # Each waiting or running claim's message, what its content lacks, or
        # why it cannot be rendered (see _render).
        self.rendered: dict[Claim, tuple[OutboundMessage | None, str, str]] = {}
        self.active = True  # the campaign is processing; False stops claims
        self.exhausted = False  # the last claim found nothing due

    def run(self) -> LoopStats:
        campaign = Campaign.objects.filter(pk=self.campaign_id).first()
        if campaign is None or campaign.status != Campaign.Status.PROCESSING:
            logger.info(
                "campaign %s: not processing (%s); nothing to dispatch",
                self.campaign_id,
                campaign.status if campaign else "not found",
            )
            return self.stats
        self.limiter = limiter_for(self.provider.name, campaign.pk, campaign.rate_limit_per_second)
        # Content cannot change while the campaign is processing: only a
        # pending campaign can be edited.
        self.content = MessageContent.of(campaign)
        self.workspace_id = campaign.workspace_id
        with log_context.bind(campaign_id=self.campaign_id, workspace_id=self.workspace_id):
            logger.info("campaign %s: worker loop started", self.campaign_id)
            with ThreadPoolExecutor(
                max_workers=self.config.concurrency, thread_name_prefix=f"deliver-{campaign.pk}"
            ) as pool:
                try:
                    self._deliver_all(pool)
                finally:
                    # Whatever stopped the loop, outcomes already known are kept
                    # and unstarted claims go back to the queue.
                    self._flush()
                    self._release_waiting()

            self._finish()
        return self.stats

    def _deliver_all(self, pool: ThreadPoolExecutor) -> None:
        while True:
            self._check_status_if_due()
            self._renew_leases_if_due()
            if self.active and not self.exhausted and len(self.waiting) < self.config.concurrency:
                batch = claims.claim_batch(
                    self.campaign_id, self.config.batch_size, self.config.lease_seconds
                )
                self.exhausted = not batch
                batch = self._drop_suppressed(batch)
                self._render(batch)
                self.waiting.extend(batch)
                # Pages show these rows in flight while they are delivered.
                streams.publish_rows(
                    self.campaign_id, (c.recipient_id for c in batch), kind=streams.CLAIMS
                )
            while self.active and self.waiting and len(self.running) < self.config.concurrency:
                claim = self.waiting.popleft()
                self.running[pool.submit(self._deliver, claim)] = claim
            if not self.running and (not self.waiting or not self.active):
                if not (self.active and self._wait_for_next_retry()):
                    return
                # A retry is due now: claim again.
                self.exhausted = False
                continue
            done, _ = wait(
                self.running, timeout=self.config.flush_interval, return_when=FIRST_COMPLETED
            )
            unstarted = []
            for future in done:
                claim = self.running.pop(future)
                outcome = future.result()
                if outcome is None:
                    unstarted.append(claim)
                else:
                    self.outcomes.append(outcome)
            if unstarted:
                self.waiting.extend(unstarted)
                self._release_waiting()
            if (
                len(self.outcomes) >= self.config.flush_size
                or time.monotonic() - self.last_flush >= self.config.flush_interval
            ):
                self._flush()

    def _drop_suppressed(self, batch: list[Claim]) -> list[Claim]:
        """End the claims whose email address or phone number is on the workspace's
        suppression list as `suppressed`, and return the others.

        Either address counts, whatever the channel: a person who asked not to
        be contacted at one of them is not written to at the other.
        """
        if not batch:
            return batch
        found = suppressed_among(
            (c.email for c in batch if c.email),
            (c.phone_number for c in batch if c.phone_number),
            workspace_id=self.workspace_id,
            normalized=True,
        )
        if not (found.emails or found.phones):
            return batch
        reasons: dict[Claim, str] = {}
        for claim in batch:
            if claim.email in found.emails:
                reasons[claim] = "not sent: the email address is on the suppression list"
            elif claim.phone_number in found.phones:
                reasons[claim] = "not sent: the phone number is on the suppression list"
        changed = claims.suppress_claims(self.campaign_id, reasons)
        self.stats.suppressed += len(changed)
        metrics.count_suppressed(self.provider, changed)
        broadcasts.broadcast_recipients(self.campaign_id, changed)
        logger.info(
            "campaign %s: %d recipients not sent because they are on the suppression list",
            self.campaign_id,
            len(changed),
        )
        return [c for c in batch if c not in reasons]

    def _wait_for_next_retry(self) -> bool:
        """Sleep until the campaign's next queued recipient is due, if that is within
        retry_wait_seconds.

        Returns True once it is due, and False without waiting when nothing is
        queued or the next retry is further away. Returns False early when the
        campaign stops processing.
        """
        # Flush first, so that the retries this loop has just scheduled count.
        self._flush()
        self._check_status()
        if not self.active:
            return False
        delay = claims.seconds_until_next_attempt(self.campaign_id)
        if delay is None or delay > self.config.retry_wait_seconds:
            return False
        if delay > 0:
            logger.info("campaign %s: waiting %.1fs for the next retry", self.campaign_id, delay)
        deadline = time.monotonic() + delay
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(remaining, STATUS_CHECK_SECONDS))
            self._check_status_if_due()
            if not self.active:
                return False
        return True

    def _deliver(self, claim: Claim) -> Outcome | None:
        """Deliver one claim; runs in a pool thread and never touches the database.

        Returns None when the claim was not started because the campaign
        stopped while it waited for the rate limiter.
        """
        # Pool threads do not inherit the loop thread's context.
        with log_context.bind(
            workspace_id=self.workspace_id,
            campaign_id=claim.campaign_id,
            recipient_id=claim.recipient_id,
            attempt=claim.attempt,
        ):
            return self._deliver_in_context(claim)

    def _deliver_in_context(self, claim: Claim) -> Outcome | None:
        if self.limiter is not None:
            try:
                if not self._wait_for_rate_limit(self.limiter):
                    return None
            except redis.RedisError as exc:
                reason = f"not sent: the rate limiter in Redis is unavailable ({exc})"
                return self._failure(claim, timezone.now(), reason, transient=True)
        started_at = timezone.now()
        message, missing, error = self.rendered.pop(claim)
        if error:
            return self._failure(claim, started_at, error, transient=False)
        delivery = Delivery(
            campaign_id=claim.campaign_id,
            recipient_id=claim.recipient_id,
            attempt=claim.attempt,
            name=claim.name,
            email=claim.email,
            phone_number=claim.phone_number,
            idempotency_key=delivery_key(claim.campaign_id, claim.recipient_id),
            message=message,
            channel=claim.channel,
            missing_content=missing,
        )
        started_at = timezone.now()
        call_started = time.perf_counter()
        try:
            message_id = self.provider.deliver(delivery)
        except DeliveryError as exc:
            return self._failure(
                claim,
                started_at,
                str(exc),
                transient=exc.transient,
                provider_seconds=time.perf_counter() - call_started,
            )
        except (TimeoutError, ConnectionError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            return self._failure(
                claim,
                started_at,
                reason,
                transient=True,
                provider_seconds=time.perf_counter() - call_started,
            )
        except Exception as exc:
            # A provider bug must not stop the campaign: it fails this
            # recipient for good, with the traceback in the log.
            logger.error(
                "campaign %s recipient %s: provider raised an unexpected error\n%s",
                claim.campaign_id,
                claim.recipient_id,
                traceback_with_short_message(exc),
            )
            reason = f"unexpected error: {type(exc).__name__}: {exc}"
            return self._failure(
                claim,
                started_at,
                reason,
                transient=False,
                provider_seconds=time.perf_counter() - call_started,
            )
        provider_seconds = time.perf_counter() - call_started
        return Outcome(
            claim=claim,
            status=Recipient.Status.SENT,
            attempt_outcome=DeliveryAttempt.Outcome.SENT,
            started_at=started_at,
            finished_at=timezone.now(),
            provider_message_id=message_id,
            provider_seconds=provider_seconds,
        )

    def _render(self, batch: list[Claim]) -> None:
        """Render the message of each claim in `batch` into `self.rendered`.

        This runs in the loop's own thread, one claim after another. Rendering
        holds the GIL throughout, and the same work spread over the delivery
        threads ran slower (docs/benchmarks.md has the figures).
        """
        assert self.content is not None
        content = self.content
        for number, claim in enumerate(batch):
            # Rendering competes for the GIL with the delivery threads, so a
            # large batch on a busy machine can take a while. The leases of
            # this loop's claims must not run out meanwhile.
            if number % RENDER_LEASE_CHECK_EVERY == 0:
                self._renew_leases_if_due()
            missing = content.missing(claim.channel)
            if missing:
                self.rendered[claim] = (None, missing, "")
                continue
            try:
                message = build_message(
                    content,
                    template_fields(claim.name, claim.email, claim.phone_number),
                    channel=claim.channel,
                    to=claim.address,
                    recipient_id=claim.recipient_id,
                )
            except ValidationError as exc:
                error = "not sent: the campaign's content does not compile: " + "; ".join(
                    exc.messages
                )
                self.rendered[claim] = (None, "", error)
            except EmptyMessage as exc:
                self.rendered[claim] = (None, "", f"not sent: {exc}")
            else:
                self.rendered[claim] = (message, "", "")

    def _wait_for_rate_limit(self, limiter: MultiRateLimiter) -> bool:
        """Take a rate-limit token; returns False if the campaign stopped meanwhile.

        Waits a second at a time so that a pause or cancel is noticed, and rides
        out a Redis restart of up to about 30 s.
        """
        redis_pauses = iter((0.5, 1, 2, 4, 8, 15))
        while self.active:
            try:
                limiter.acquire(timeout=1)
                # acquire() may have slept for up to the timeout, and the
                # campaign may have stopped meanwhile. The token is then
                # spent unused, which only slows other senders a little.
                return self.active
            except RateLimitTimeout as exc:
                # The next token is more than a second away: sleep up to a
                # second, then look at the campaign's status again.
                time.sleep(min(1.0, exc.wait))
            except redis.ConnectionError as exc:
                pause = next(redis_pauses, None)
                if pause is None:
                    raise
                logger.warning(
                    "campaign %s: rate limiter unavailable (%s); retrying in %ss",
                    self.campaign_id,
                    exc,
                    pause,
                )
                time.sleep(pause)
        return False

    def _failure(
        self,
        claim: Claim,
        started_at: datetime,
        reason: str,
        transient: bool,
        provider_seconds: float | None = None,
    ) -> Outcome:
        # The reasons of exceptions other than DeliveryError are not shortened yet.
        reason = short_reason(reason)
        finished_at = timezone.now()
        attempt_in_round = claim.attempt - claim.attempt_base
        retry_at = None
        status = Recipient.Status.FAILED
        if transient and attempt_in_round < self.config.max_attempts:
            delay = retry_delay(
                attempt_in_round,
                self.config.retry_base_seconds,
                self.config.retry_max_seconds,
                self.rng,
            )
            retry_at = finished_at + timedelta(seconds=delay)
            status = Recipient.Status.QUEUED
        logger.warning(
            "campaign %s recipient %s attempt %s: %s delivery error: %s%s",
            claim.campaign_id,
            claim.recipient_id,
            claim.attempt,
            "transient" if transient else "permanent",
            reason,
            f"; retry at {retry_at:%H:%M:%S}" if retry_at else "",
        )
        return Outcome(
            claim=claim,
            status=status,
            attempt_outcome=(
                DeliveryAttempt.Outcome.TRANSIENT_ERROR
                if transient
                else DeliveryAttempt.Outcome.PERMANENT_ERROR
            ),
            started_at=started_at,
            finished_at=finished_at,
            error=reason,
            transient=transient,
            retry_at=retry_at,
            provider_seconds=provider_seconds,
        )

    def _flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.outcomes:
            return
        outcomes, self.outcomes = self.outcomes, []
        changed = claims.record_outcomes(self.campaign_id, outcomes)
        metrics.count_outcomes(self.provider, changed, outcomes)

        final = [r for r in changed if r.status != Recipient.Status.QUEUED]
        failed = sum(1 for r in final if r.status == Recipient.Status.FAILED)
        self.stats.delivered += len(outcomes)
        self.stats.sent += len(final) - failed
        self.stats.failed += failed
        self.stats.retried += len(changed) - len(final)
        if len(changed) < len(outcomes):
            logger.warning(
                "campaign %s: %d outcomes arrived after their claim expired and were "
                "not applied; their attempts are recorded",
                self.campaign_id,
                len(outcomes) - len(changed),
            )

        broadcasts.broadcast_recipients(self.campaign_id, changed)
        auto_pause = settings.AUTO_PAUSE_FAILURE_COUNT or settings.AUTO_PAUSE_FAILURE_RATE
        if final and auto_pause:
            self._pause_if_failing(len(final), failed)
        # With DEBUG on, Django keeps every query's SQL on the connection; a
        # long loop would grow by a few hundred bytes per recipient.
        reset_queries()

    def _pause_if_failing(self, processed: int, failed: int) -> None:
        campaign = Campaign(pk=self.campaign_id)
        processed_total, failed_total = campaign.count_outcomes(processed, failed)
        reason = failure_threshold_reason(processed_total, failed_total)
        if not reason:
            return
        with transaction.atomic():
            paused = campaign.pause(reason)
            if paused:
                # No user: the log shows the system and the threshold's reason.
                record(campaign, Action.PAUSED, None, reason)
        if paused:
            logger.warning("campaign %s: paused automatically: %s", self.campaign_id, reason)
            broadcasts.broadcast_campaign(campaign)

    def _check_status_if_due(self) -> None:
        if self.active and shutdown.stop_requested():
            logger.info(
                "campaign %s: the worker is shutting down; this loop stops claiming and "
                "returns its waiting claims to the queue",
                self.campaign_id,
            )
            self.active = False
            self._release_waiting()
        if time.monotonic() - self.last_status_check >= STATUS_CHECK_SECONDS:
            self._check_status()

    def _check_status(self) -> None:
        self.last_status_check = time.monotonic()
        status = (
            Campaign.objects.filter(pk=self.campaign_id).values_list("status", flat=True).first()
        )
        if status != Campaign.Status.PROCESSING and self.active:
            logger.info(
                "campaign %s: status is %s; this worker stops claiming", self.campaign_id, status
            )
            self.active = False
            self._release_waiting()

    def _release_waiting(self) -> None:
        if not self.waiting:
            return
        released = list(self.waiting)
        self.waiting.clear()
        for claim in released:
            self.rendered.pop(claim, None)
        changed = claims.release_claims(self.campaign_id, released)
        self.stats.released += len(changed)
        broadcasts.broadcast_recipients(self.campaign_id, changed)

    def _renew_leases_if_due(self) -> None:
        now = time.monotonic()
        if now - self.last_lease_renewal < self.config.lease_seconds / 3:
            return
        self.last_lease_renewal = now
        tokens = {c.token for c in self.waiting} | {c.token for c in self.running.values()}
        claims.renew_leases(list(tokens), self.config.lease_seconds)

    def _finish(self) -> None:
        campaign = Campaign(pk=self.campaign_id)
        if campaign.complete():
            broadcasts.broadcast_campaign(campaign)
            logger.info("campaign %s: completed", self.campaign_id)
        else:
            # Open pages render the header again from this announcement,
            # with the counts as this loop leaves them.
            broadcasts.broadcast_campaign(campaign)
            if campaign.status == Campaign.Status.PROCESSING:
                log_pending_retries(self.campaign_id)
        logger.info(
            "campaign %s: worker loop finished in %.1fs (delivered=%d sent=%d failed=%d "
            "retry=%d released=%d suppressed=%d)",
            self.campaign_id,
            time.monotonic() - self.stats.started,
            self.stats.delivered,
            self.stats.sent,
            self.stats.failed,
            self.stats.retried,
            self.stats.released,
            self.stats.suppressed,
        )


def failure_threshold_reason(processed: int, failed: int) -> str:
    """Return why the campaign should pause itself, or "" when it should go on."""
    count_limit = settings.AUTO_PAUSE_FAILURE_COUNT
    rate_limit = settings.AUTO_PAUSE_FAILURE_RATE
    if count_limit and failed >= count_limit:
        return f"{failed} failures since the last resume (limit {count_limit})"
    if rate_limit and processed >= settings.AUTO_PAUSE_MIN_PROCESSED:
        share = failed / processed
        if share >= rate_limit:
            return (
                f"{share:.0%} of {processed} recipients failed since the last resume "
                f"(limit {rate_limit:.0%})"
            )
    return ""


def log_pending_retries(campaign_id: int) -> None:
    """Log how many retries a processing campaign has left to the sweep, and the earliest."""
    if not logger.isEnabledFor(logging.INFO):
        return
    pending = Recipient.objects.filter(
        campaign_id=campaign_id, status=Recipient.Status.QUEUED, next_attempt_at__isnull=False
    ).aggregate(count=Count("pk"), earliest=Min("next_attempt_at"))
    if pending["count"]:
        logger.info(
            "campaign %s: %d retries scheduled, the earliest at %s; the sweep wakes the "
            "campaign when one is due",
            campaign_id,
            pending["count"],
            f"{pending['earliest']:%H:%M:%S}",
        )
