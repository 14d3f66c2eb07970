"""Recipient transitions of the dispatch engine, each one SQL statement over many rows.

- `claim_batch`: `queued → in_flight` with a claim token and a lease, using
  `FOR UPDATE SKIP LOCKED` so that workers never claim the same row.
- `record_outcomes`: `in_flight → sent | failed | queued (retry at …)`, only
  for rows that still carry this worker's claim token.
- `suppress_claims`: `in_flight → suppressed` for claims whose address is
  on the suppression list, before anything is sent.
- `release_claims`: `in_flight → queued` (or `cancelled`) for claims that a
  worker took but did not start, after a pause or a cancel.
- `renew_leases`: pushes the lease of a worker's live claims forward.
- `expire_leases`: `in_flight → queued` (or `cancelled`) when the lease ran
  out, because the worker that held it died; used by the sweep.

Statements are written in SQL because each does in one round trip what the
ORM would do in several, and because their WHERE clauses are the guarantees.
They use clock_timestamp(), the time of the statement, rather than now(), the
start of the transaction, which may be older than a retry time set since.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, transaction

from campaigns.models import Campaign, DeliveryAttempt, Recipient
from dispatch.providers.base import Channel

RECIPIENTS = Recipient._meta.db_table
CAMPAIGNS = Campaign._meta.db_table
ATTEMPTS = DeliveryAttempt._meta.db_table

# Columns that rendering a recipient row needs, in this order.
ROW_COLUMNS = (
    "id, campaign_id, name, email, phone_number, status, channel, failure_reason, "
    "processed_at, attempts, next_attempt_at, last_error_transient, provider_message_id, version"
)
ROW_FIELDS = [column.strip() for column in ROW_COLUMNS.split(",")]


def recipient_from_row(row: tuple[Any, ...]) -> Recipient:
    """Build a Recipient from a row of ROW_COLUMNS, for rendering."""
    return Recipient.from_db(DEFAULT_DB_ALIAS, ROW_FIELDS, row)


@contextmanager
def binary_cursor() -> Iterator[psycopg.Cursor[Any]]:
    """Yield a cursor on Django's connection that binds parameters on the server.

    Django's own cursors bind parameters in the client, which turns every
    element of a long array into quoted text. This cursor sends `%b`
    parameters in binary, several times faster for the arrays of a flush.
    It shares Django's connection and transaction, and raises Django's
    database errors.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


@dataclass(frozen=True)
class Claim:
    """One claimed recipient, with the fields the claiming worker needs to deliver it."""

    recipient_id: int
    campaign_id: int
    token: uuid.UUID
    attempt: int
    # `attempts` when the current round began; attempt - attempt_base is the
    # attempt number within the round, which the retry limit applies to.
    attempt_base: int
    claimed_at: datetime
    name: str
    email: str
    phone_number: str
    channel: Channel

    @property
    def address(self) -> str:
        """The email address or phone number that this claim's message goes to."""
        return self.email if self.channel == "email" else self.phone_number


def claim_batch(campaign_id: int, size: int, lease_seconds: float) -> list[Claim]:
    """Claim up to `size` queued recipients that are due: first those never tried,
    in id order, then retries in the order they fell due.

    The order matches the recipient_claim_order index, which contains only
    queued rows. A scan in id order would walk past every recipient already
    processed.

    Claims nothing unless the campaign is processing. The campaign row is read
    FOR SHARE, so a pause or cancel waits for this statement, and every claim
    made before a pause is committed is visible to it.

    A recipient's channel is chosen at its first claim, as
    `dispatch.messages.choose_channel` does, and kept for its retries.
    """
    token = uuid.uuid4()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT prefer_sms FROM {CAMPAIGNS} WHERE id = %s AND status = 'processing' FOR SHARE",
            [campaign_id],
        )
        campaign = cursor.fetchone()
        if campaign is None:
            return []
        cursor.execute(
            f"""
            UPDATE {RECIPIENTS} AS r
               SET status = 'in_flight',
                   claim_token = %(token)s,
                   claimed_at = clock_timestamp(),
                   lease_expires_at = clock_timestamp() + make_interval(secs => %(lease)s),
                   attempts = r.attempts + 1,
                   next_attempt_at = NULL,
                   channel = CASE
                       WHEN r.channel <> '' THEN r.channel
                       WHEN r.email <> '' AND NOT (%(prefer_sms)s AND r.phone_number <> '')
                       THEN 'email'
                       ELSE 'sms' END,
                   version = r.version + 1
             WHERE r.id IN (
                   SELECT id FROM {RECIPIENTS}
                    WHERE campaign_id = %(campaign)s
                      AND status = 'queued'
                      AND (next_attempt_at IS NULL OR next_attempt_at <= clock_timestamp())
                    ORDER BY next_attempt_at NULLS FIRST, id
                    LIMIT %(size)s
                      FOR UPDATE SKIP LOCKED)
            RETURNING r.id, r.attempts, r.attempt_base, r.claimed_at, r.name, r.email,
                      r.phone_number, r.channel
            """,
            {
                "token": token,
                "lease": lease_seconds,
                "campaign": campaign_id,
                "size": size,
                "prefer_sms": campaign[0],
            },
        )
        rows = cursor.fetchall()
    rows.sort()
    return [
        Claim(
            recipient_id=row[0],
            campaign_id=campaign_id,
            token=token,
            attempt=row[1],
            attempt_base=row[2],
            claimed_at=row[3],
            name=row[4],
            email=row[5],
            phone_number=row[6],
            channel=cast(Channel, row[7]),
        )
        for row in rows
    ]


def seconds_until_next_attempt(campaign_id: int) -> float | None:
    """Return the seconds until the campaign's next queued recipient is due.

    The result is 0 or less when one is due already (never tried, requeued, or
    a retry whose time has passed), and None when no recipient is queued. It
    is measured by the database's clock, which claim_batch compares with, so a
    worker whose own clock is off neither claims too early nor waits too long.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH now AS (SELECT clock_timestamp() AS at)
            SELECT EXTRACT(EPOCH FROM min(coalesce(r.next_attempt_at, now.at) - now.at))
              FROM {RECIPIENTS} AS r, now
             WHERE r.campaign_id = %s AND r.status = 'queued'
            """,
            [campaign_id],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return None
    return float(row[0])


@dataclass(frozen=True)
class Outcome:
    """The result of one delivery, ready to be written."""

    claim: Claim
    status: str  # sent, failed or queued (a transient error that will be retried)
    attempt_outcome: str  # a DeliveryAttempt.Outcome value
    started_at: datetime
    finished_at: datetime
    provider_message_id: str = ""
    error: str = ""
    transient: bool = False
    retry_at: datetime | None = None
    # Seconds that the provider call took, or None when no provider was called.
    provider_seconds: float | None = None


def record_outcomes(campaign_id: int, outcomes: list[Outcome]) -> list[Recipient]:
    """Write outcomes and their attempts in one statement; returns the changed rows.

    A row changes only if it is still in flight under the same claim token: a
    claim that expired and went to another worker keeps that worker's result.
    The attempt is recorded either way, because the delivery did happen.
    """
    if not outcomes:
        return []
    with transaction.atomic(), binary_cursor() as cursor:
        cursor.execute(
            f"""
            WITH v AS (
                SELECT * FROM unnest(%b::bigint[], %b::uuid[], %b::integer[], %b::text[],
                                     %b::text[], %b::timestamptz[], %b::timestamptz[],
                                     %b::text[], %b::text[], %b::boolean[], %b::timestamptz[])
                       AS v(id, token, number, status, outcome, started_at, finished_at,
                            message_id, error, transient, retry_at)
            ),
            changed AS (
                UPDATE {RECIPIENTS} AS r
                   SET status = v.status,
                       failure_reason = CASE WHEN v.status = 'failed'
                                             THEN left(v.error, 255) ELSE '' END,
                       last_error_transient = v.transient,
                       provider_message_id = v.message_id,
                       next_attempt_at = v.retry_at,
                       processed_at = CASE WHEN v.status = 'queued'
                                           THEN NULL ELSE v.finished_at END,
                       claim_token = NULL,
                       claimed_at = NULL,
                       lease_expires_at = NULL,
                       version = r.version + 1
                  FROM v
                 WHERE r.id = v.id AND r.status = 'in_flight' AND r.claim_token = v.token
                RETURNING {", ".join("r." + field for field in ROW_FIELDS)}
            ),
            logged AS (
                INSERT INTO {ATTEMPTS}
                       (recipient_id, campaign_id, number, started_at, finished_at, outcome,
                        provider_message_id, error)
                SELECT id, %b, number, started_at, finished_at, outcome, message_id, error
                  FROM v
            )
            SELECT * FROM changed
            """,
            [
                [o.claim.recipient_id for o in outcomes],
                [o.claim.token for o in outcomes],
                [o.claim.attempt for o in outcomes],
                [o.status for o in outcomes],
                [o.attempt_outcome for o in outcomes],
                [o.started_at for o in outcomes],
                [o.finished_at for o in outcomes],
                [o.provider_message_id[:255] for o in outcomes],
                [o.error[:500] for o in outcomes],
                [o.transient for o in outcomes],
                [o.retry_at for o in outcomes],
                campaign_id,
            ],
        )
        changed = [recipient_from_row(row) for row in cursor.fetchall()]

        if any(r.status == Recipient.Status.QUEUED for r in changed):
            # A retry was queued while the campaign may have been cancelled, and
            # cancel() only changes rows that were queued when it ran.
            cursor.execute(
                f"""
                UPDATE {RECIPIENTS} SET status = 'cancelled', processed_at = clock_timestamp(),
                                        next_attempt_at = NULL
                 WHERE campaign_id = %b AND status = 'queued'
                   AND EXISTS (SELECT 1 FROM {CAMPAIGNS} WHERE id = %b AND status = 'cancelled')
                """,
                [campaign_id, campaign_id],
            )
    return changed


def suppress_claims(campaign_id: int, reasons: dict[Claim, str]) -> list[Recipient]:
    """Move claimed recipients to the final status `suppressed`, each with its reason.

    Only rows still in flight under the claim's token change. The attempt that
    the claim counted is taken back, because nothing was sent. Returns the
    changed rows.
    """
    if not reasons:
        return []
    claimed = list(reasons)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {RECIPIENTS} AS r
               SET status = 'suppressed',
                   failure_reason = left(v.reason, 255),
                   processed_at = clock_timestamp(),
                   attempts = r.attempts - 1,
                   claim_token = NULL,
                   claimed_at = NULL,
                   lease_expires_at = NULL,
                   version = r.version + 1
              FROM unnest(%s::bigint[], %s::uuid[], %s::text[]) AS v(id, token, reason)
             WHERE r.id = v.id AND r.campaign_id = %s
               AND r.status = 'in_flight' AND r.claim_token = v.token
            RETURNING {", ".join("r." + field for field in ROW_FIELDS)}
            """,
            [
                [c.recipient_id for c in claimed],
                [c.token for c in claimed],
                [reasons[c] for c in claimed],
                campaign_id,
            ],
        )
        return [recipient_from_row(row) for row in cursor.fetchall()]


def release_claims(campaign_id: int, claims: list[Claim]) -> list[Recipient]:
    """Return claims that were never started to `queued`, or to `cancelled` when the
    campaign was cancelled; the attempt they counted is taken back. Returns the
    changed rows."""
    if not claims:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {RECIPIENTS} AS r
               SET status = CASE WHEN c.status = 'cancelled' THEN 'cancelled' ELSE 'queued' END,
                   processed_at = CASE WHEN c.status = 'cancelled' THEN clock_timestamp() END,
                   attempts = r.attempts - 1,
                   claim_token = NULL,
                   claimed_at = NULL,
                   lease_expires_at = NULL,
                   version = r.version + 1
              FROM {CAMPAIGNS} AS c, unnest(%s::bigint[], %s::uuid[]) AS v(id, token)
             WHERE c.id = r.campaign_id AND r.id = v.id
               AND r.status = 'in_flight' AND r.claim_token = v.token
            RETURNING {", ".join("r." + field for field in ROW_FIELDS)}
            """,
            [[c.recipient_id for c in claims], [c.token for c in claims]],
        )
        return [recipient_from_row(row) for row in cursor.fetchall()]


def renew_leases(tokens: list[uuid.UUID], lease_seconds: float) -> int:
    """Extend the lease of every in-flight claim under these tokens."""
    if not tokens:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {RECIPIENTS}
               SET lease_expires_at = clock_timestamp() + make_interval(secs => %s)
             WHERE status = 'in_flight' AND claim_token = ANY(%s::uuid[])
            """,
            [lease_seconds, tokens],
        )
        return cursor.rowcount


def expire_leases(limit: int = 10_000) -> list[Recipient]:
    """Return claims whose lease expired to `queued` (or `cancelled` in a cancelled
    campaign), and record each as a `lease_expired` attempt; returns the changed rows.

    The delivery of such a claim may or may not have happened before its
    worker died, so the recipient may be delivered once more.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH expired AS (
                SELECT r.id, r.claimed_at, r.lease_expires_at
                  FROM {RECIPIENTS} AS r
                 WHERE r.status = 'in_flight' AND r.lease_expires_at < clock_timestamp()
                 ORDER BY r.lease_expires_at
                 LIMIT %s
                   FOR UPDATE SKIP LOCKED
            ),
            requeued AS (
                UPDATE {RECIPIENTS} AS r
                   SET status = CASE WHEN c.status = 'cancelled' THEN 'cancelled' ELSE 'queued' END,
                       processed_at = CASE WHEN c.status = 'cancelled' THEN clock_timestamp() END,
                       claim_token = NULL,
                       claimed_at = NULL,
                       lease_expires_at = NULL,
                       version = r.version + 1
                  FROM expired AS e, {CAMPAIGNS} AS c
                 WHERE r.id = e.id AND c.id = r.campaign_id
                RETURNING {", ".join("r." + field for field in ROW_FIELDS)},
                          e.claimed_at AS lost_claimed_at
            ),
            logged AS (
                INSERT INTO {ATTEMPTS}
                       (recipient_id, campaign_id, number, started_at, finished_at, outcome,
                        provider_message_id, error)
                SELECT id, campaign_id, attempts, coalesce(lost_claimed_at, clock_timestamp()),
                       clock_timestamp(),
                       'lease_expired', '',
                       'claim expired: the worker stopped before recording an outcome'
                  FROM requeued
            )
            SELECT {ROW_COLUMNS} FROM requeued
            """,
            [limit],
        )
        return [recipient_from_row(row) for row in cursor.fetchall()]
