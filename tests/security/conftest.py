"""Fixtures of the security tests: the app under uvicorn for the live streams (tests/servers.py)."""

from tests.servers import (  # noqa: F401 (pytest finds fixtures and hooks by name)
    app_server,
    pytest_runtest_makereport,
)
