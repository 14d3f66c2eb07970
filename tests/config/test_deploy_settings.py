"""HTTPS and security headers: `check --deploy` passes in production, http works in development.

Each case runs in a fresh process, because the settings read the environment
at import. The child gets none of this process's security variables, which
config.test_settings turns off for the test client.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.config.test_settings import last_line, start_django

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Variables that this file sets per case, or that would change what the checks see.
SECURITY_VARIABLES = {
    "DEBUG",
    "SECRET_KEY",
    "DOTENV_PATH",
    "ALLOWED_HOSTS",
    "SITE_URL",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    # The browser tests set it for the rest of the session, and the
    # deployment checks reject it (async.E001).
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}

HOST = "campaigns.example.com"


def production_environment() -> dict[str, str]:
    return {
        "DEBUG": "false",
        # About 67 characters, from a cryptographic source, as Django's check requires.
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        "SITE_URL": f"https://{HOST}",
    }


def run_in_project(
    tmp_path: Path, arguments: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    child_env = {
        name: value for name, value in os.environ.items() if name not in SECURITY_VARIABLES
    }
    child_env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DOTENV_PATH=str(tmp_path / "missing.env"),
        **env,
    )
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=PROJECT_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def check_deploy(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `manage.py check --deploy --fail-level WARNING` with production settings and `env`."""
    return run_in_project(
        tmp_path,
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        {**production_environment(), **env},
    )


def test_check_deploy_passes_in_production(tmp_path: Path) -> None:
    result = check_deploy(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


# Each change undoes one default, and the deployment checks should name it.
WEAKENED = [
    ({"SECURE_SSL_REDIRECT": "false"}, "security.W008"),
    ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
    ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "false"}, "security.W005"),
    ({"SECURE_HSTS_PRELOAD": "false"}, "security.W021"),
    ({"SESSION_COOKIE_SECURE": "false"}, "security.W012"),
    ({"CSRF_COOKIE_SECURE": "false"}, "security.W016"),
    ({"SECURE_CONTENT_TYPE_NOSNIFF": "false"}, "security.W006"),
    ({"SECRET_KEY": "short-key"}, "security.W009"),
    ({"SITE_URL": f"http://{HOST}"}, "suppressions.W001"),
]


@pytest.mark.parametrize(("change", "check_id"), WEAKENED, ids=[c for _, c in WEAKENED])
def test_check_deploy_fails_on_weaker_setting(
    tmp_path: Path, change: dict[str, str], check_id: str
) -> None:
    result = check_deploy(tmp_path, **change)

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"({check_id})" in output
    assert "1 issue" in output


# Requests through Django's test client in the child: the response status,
# its Location header, and its Strict-Transport-Security header.
REQUESTS = """
import json
import django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="campaigns.example.com")
results = {}
for name, kwargs in [
    ("http", {}),
    ("https", {"secure": True}),
    ("proxied", {"headers": {"X-Forwarded-Proto": "https"}}),
]:
    response = client.get("/campaigns/", **kwargs)
    results[name] = [
        response.status_code,
        response.get("Location"),
        response.get("Strict-Transport-Security"),
    ]
print(json.dumps(results))
"""


def request_results(tmp_path: Path, env: dict[str, str]) -> dict[str, list[object]]:
    result = run_in_project(tmp_path, ["-c", REQUESTS], env)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.splitlines()[-1]))


def test_production_redirects_http_and_sends_hsts(tmp_path: Path) -> None:
    results = request_results(tmp_path, production_environment())

    # /campaigns/ redirects to sign-in; over http, the SSL redirect comes first.
    assert results["http"] == [301, f"https://{HOST}/campaigns/", None]
    assert results["https"] == [
        302,
        "/accounts/login/?next=/campaigns/",
        "max-age=31536000; includeSubDomains; preload",
    ]
    # Without SECURE_PROXY_SSL_HEADER, a client's X-Forwarded-Proto is not trusted.
    assert results["proxied"][0] == 301


def test_proxy_ssl_header_marks_request_secure(tmp_path: Path) -> None:
    env = {**production_environment(), "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}

    results = request_results(tmp_path, env)

    assert results["proxied"] == [
        302,
        "/accounts/login/?next=/campaigns/",
        "max-age=31536000; includeSubDomains; preload",
    ]


def test_development_works_over_http(tmp_path: Path) -> None:
    env = {"DEBUG": "true", "ALLOWED_HOSTS": HOST}

    results = request_results(tmp_path, env)

    assert results["http"] == [302, "/accounts/login/?next=/campaigns/", None]
    # HSTS is off too, so a browser never learns to avoid http for the host.
    assert results["https"] == [302, "/accounts/login/?next=/campaigns/", None]


def test_development_settings_are_off(tmp_path: Path) -> None:
    names = [
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
    ]
    code = (
        "import django; django.setup(); from django.conf import settings; "
        f"print(*(getattr(settings, name) for name in {names!r}))"
    )

    result = run_in_project(tmp_path, ["-c", code], {"DEBUG": "true"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False", "0", "None"]


INVALID = [
    ("SECURE_SSL_REDIRECT", "sometimes", "is not a boolean"),
    ("SECURE_HSTS_SECONDS", "-1", "out of range: expected an integer of at least 0"),
    ("SECURE_HSTS_SECONDS", "a year", "is not an integer"),
    ("SECURE_PROXY_SSL_HEADER", "X Forwarded Proto", "is not an HTTP header name"),
    ("SECURE_PROXY_SSL_HEADER", "X_Forwarded_Proto", "is not an HTTP header name"),
    ("SECURE_REFERRER_POLICY", "everywhere", "is not a valid value: use one of no-referrer,"),
    ("SECURE_CROSS_ORIGIN_OPENER_POLICY", "open", "use one of same-origin, same-origin-allow"),
]


@pytest.mark.parametrize(("name", "value", "message"), INVALID)
def test_invalid_security_setting_fails(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    result = start_django(tmp_path, DEBUG="true", **{name: value})

    assert result.returncode != 0
    error = last_line(result.stderr)
    assert error.startswith("ValueError:")
    assert f"{name}={value!r}" in error
    assert message in error
