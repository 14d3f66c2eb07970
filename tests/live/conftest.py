"""Fixtures for the live-update tests: the app under uvicorn (see tests/servers.py)."""

from tests.servers import (  # noqa: F401 (pytest finds fixtures and hooks by name)
    app_server,
    pytest_runtest_makereport,
    start_extra_app_server,
)
