"""The development SMTP sink command and the captured-mail pages."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from dispatch.mailsink import list_messages, parse_message, store_message
from tests.servers import PROJECT_ROOT, free_port, wait_until

STOP_TIMEOUT_SECONDS = 10.0


def accepts_connections(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=1) as client:
            client.noop()
    except OSError:
        return False
    return True


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[int, Path, subprocess.Popen[str]]]:
    """`manage.py smtp_sink` in a subprocess on a free loopback port."""
    port = free_port()
    directory = tmp_path / "mail"
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "smtp_sink",
            "--port",
            str(port),
            "--directory",
            str(directory),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: process.poll() is not None or accepts_connections(port),
            timeout=30,
            failure_message="smtp_sink did not start listening",
        )
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        yield port, directory, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=STOP_TIMEOUT_SECONDS)


def test_sink_command_stores_message(sink: tuple[int, Path, subprocess.Popen[str]]) -> None:
    port, directory, process = sink
    message = EmailMessage()
    message["From"] = "shop@example.com"
    message["To"] = "ada@example.com"
    message["Subject"] = "Spring sale"
    message.set_content("Hello Ada")

    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.send_message(message, to_addrs=["ada@example.com", "bob@example.com"])

    files = list(directory.glob("*.eml"))
    assert len(files) == 1
    stored = parse_message(files[0].read_bytes())
    assert stored["Subject"] == "Spring sale"
    assert stored["Return-Path"] == "<shop@example.com>"
    assert stored["X-Envelope-To"] == "ada@example.com, bob@example.com"
    assert stored.get_content().strip() == "Hello Ada"

    process.send_signal(signal.SIGTERM)
    stdout, _stderr = process.communicate(timeout=STOP_TIMEOUT_SECONDS)
    assert process.returncode == 0
    assert f"listening on 127.0.0.1:{port}" in stdout
    assert f"{files[0].name}: from shop@example.com to ada@example.com: Spring sale" in stdout


def test_sink_command_reports_busy_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "smtp_sink", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"},
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def captured_email(html: str = "") -> bytes:
    message = EmailMessage()
    message["From"] = "Shop <shop@example.com>"
    message["To"] = "ada@example.com"
    message["Subject"] = "Sale <today>"
    message["List-Unsubscribe"] = "<https://campaigns.example.com/unsubscribe/abc/>"
    message.set_content("Hello Ada & friends")
    if html:
        message.add_alternative(html, subtype="html")
    return message.as_bytes()


@pytest.fixture
def mail_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DEBUG = True
    settings.MAIL_SINK_DIR = tmp_path / "mail"
    return tmp_path / "mail"


def test_mail_pages_are_missing_without_debug(
    settings: Any, tmp_path: Path, client: Client
) -> None:
    settings.DEBUG = False
    settings.MAIL_SINK_DIR = tmp_path
    path = store_message(tmp_path, "shop@example.com", ["ada@example.com"], captured_email())

    assert client.get(reverse("dev_mail:index")).status_code == 404
    assert client.get(reverse("dev_mail:detail", args=[path.stem])).status_code == 404


def test_mail_index_lists_newest_first(mail_dir: Path, client: Client) -> None:
    first = store_message(mail_dir, "shop@example.com", ["ada@example.com"], captured_email())
    second = store_message(mail_dir, "shop@example.com", ["bob@example.com"], captured_email())

    response = client.get(reverse("dev_mail:index"))

    assert response.status_code == 200
    names = [message.name for message in response.context["captured"]]
    assert names == [second.stem, first.stem]
    page = response.content.decode()
    assert "Sale &lt;today&gt;" in page
    assert "Shop &lt;shop@example.com&gt;" in page
    assert "bob@example.com" in page


def test_mail_detail_escapes_html_in_sandbox(mail_dir: Path, client: Client) -> None:
    html = '<p onclick="steal()">Hi</p><script>alert("x")</script>'
    path = store_message(mail_dir, "shop@example.com", ["ada@example.com"], captured_email(html))

    response = client.get(reverse("dev_mail:detail", args=[path.stem]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "<script>alert" not in page
    assert 'onclick="steal()"' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert '<iframe sandbox srcdoc="&lt;meta http-equiv=&quot;Content-Security-Policy&quot;' in page
    assert "Hello Ada &amp; friends" in page
    assert "https://campaigns.example.com/unsubscribe/abc/" in page


def test_mail_detail_unknown_or_invalid_name_is_404(mail_dir: Path, client: Client) -> None:
    assert (
        client.get(reverse("dev_mail:detail", args=["20260101T000000000000Z-0000abcd"])).status_code
        == 404
    )
    assert client.get("/dev/mail/..%2F..%2Fsecret/").status_code == 404


def test_list_messages_ignores_other_files(tmp_path: Path) -> None:
    store_message(tmp_path, "shop@example.com", ["ada@example.com"], captured_email())
    (tmp_path / "notes.eml").write_text("not a captured message")
    (tmp_path / ".20260101T000000000000Z-0000abcd.tmp").write_text("half a message")

    assert len(list_messages(tmp_path, limit=10)) == 1
