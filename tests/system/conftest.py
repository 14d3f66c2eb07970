"""Fixtures for browser tests: Chromium, the app under uvicorn and a Celery worker.

pytest-playwright drives Debian's Chromium, tests/servers.py starts uvicorn,
and the worker runs in this process. `delivery_gate` makes that worker
deliver only as many recipients as the test allows (tests/system/delivery.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from celery.worker import WorkController
from django.conf import settings
from pytest_django.fixtures import Settings

from config.celery import app as celery_app
from tests.factories import session_cookie
from tests.servers import (  # noqa: F401 (pytest finds fixtures and hooks by name)
    app_server,
    pytest_runtest_makereport,
    restartable_app_server,
    start_extra_app_server,
)
from tests.system.delivery import DeliveryGate, gate

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


@pytest.fixture(scope="session", autouse=True)
def allow_orm_calls_under_playwright() -> Iterator[None]:
    """Let tests use the ORM while sync Playwright's event loop runs in their thread.

    Sync Playwright keeps an asyncio loop marked as running in the main thread
    from the first browser test to the end of the session, so Django rejects
    every ORM call there as "from an async context", including pytest-django's
    database flush and teardown. Django reads the variable on each call. It is
    set for the rest of the session, because tests that run after the browser
    started need it too. uvicorn is started without it (tests/servers.py).
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch options (--headed, --slowmo) with Debian's Chromium.

    Playwright's own browser builds come from `playwright install`, which
    needs internet access, so the tests use the `chromium` Debian package.
    """
    return {
        "headless": True,
        **browser_type_launch_args,
        "executable_path": CHROMIUM_PATH,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def base_url(app_server: str) -> str:  # noqa: F811 (the imported fixture, as a parameter)
    """Make `page.goto("/campaigns/new")` and similar relative URLs go to uvicorn."""
    return app_server


@pytest.fixture
def celery_worker() -> Iterator[WorkController]:
    """A Celery worker in this process, consuming this test run's queues.

    It runs tasks in threads of the test process, so they use the test
    database through Django. Tests need `django_db(transaction=True)` so that
    the worker can read the rows that the test and uvicorn commit.
    """
    queues = {
        settings.CELERY_TASK_DEFAULT_QUEUE,
        settings.DISPATCH_CONTROL_QUEUE,
        settings.IMPORT_QUEUE,
    }
    with start_worker(
        celery_app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        loglevel="WARNING",
    ) as worker:
        # uvicorn enqueues to the default, control and import queues, which
        # test_settings names per run. start_worker is given no queue, like
        # `celery worker` without -Q, so this checks that it takes every name
        # from the settings. (The celery-types stubs lack WorkController.consumer.)
        task_consumer = worker.consumer.task_consumer  # type: ignore[attr-defined]
        consumed = {q.name for q in task_consumer.queues}
        assert consumed == queues, f"the worker consumes {consumed}, expected {queues}"
        yield worker


@pytest.fixture
def delivery_gate(celery_worker: WorkController, settings: Settings) -> Iterator[DeliveryGate]:
    """The gate that the worker's deliveries wait at; closed at the start of the test.

    One worker loop per campaign delivers up to four recipients at a time.
    The gate opens when the test ends, so that waiting deliveries finish
    before the worker stops.
    """
    settings.DELIVERY_PROVIDER = "tests.system.delivery.GatedProvider"
    settings.DELIVERY_CONCURRENCY = 4
    settings.DISPATCH_BATCH_SIZE = 4
    settings.DISPATCH_WORKERS_PER_CAMPAIGN = 1
    gate.reset()
    yield gate
    gate.open()


@pytest.fixture
def new_context(new_context: Any, base_url: str) -> Any:
    """pytest-playwright's new_context, with every browser context signed in as the operator.

    The session is made in the test database, which uvicorn reads, so tests
    that use the browser need `django_db(transaction=True)`.
    """
    cookie = session_cookie()["Cookie"]
    name, _, value = cookie.partition("=")

    def create(**kwargs: Any) -> Any:
        context = new_context(**kwargs)
        context.add_cookies([{"name": name, "value": value, "url": base_url}])
        return context

    return create
