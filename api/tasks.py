"""The periodic task that deletes expired idempotency records."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from api.models import IdempotencyRecord

logger = logging.getLogger(__name__)

# Records deleted per statement, so that a large backlog holds no long lock.
SWEEP_BATCH_SIZE = 5000


def delete_expired_idempotency_records() -> int:
    """Delete every expired record, a batch at a time; return how many were deleted.

    Requests that carry a key delete their own workspace's expired records,
    so this catches workspaces that stopped sending keys.
    """
    deleted = 0
    while True:
        now = timezone.now()
        batch = list(
            IdempotencyRecord.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[
                :SWEEP_BATCH_SIZE
            ]
        )
        if not batch:
            break
        count, _ = IdempotencyRecord.objects.filter(pk__in=batch, expires_at__lte=now).delete()
        deleted += count
        if len(batch) < SWEEP_BATCH_SIZE:
            break
    if deleted:
        logger.info("idempotency sweep: %d expired records deleted", deleted)
    return deleted


@shared_task(name="api.sweep_idempotency", ignore_result=True)
def sweep_idempotency_task() -> None:
    delete_expired_idempotency_records()
