"""The development SMTP sink: its recipient rules, the command and the captured-mail pages."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, DeliveryAttempt, Recipient
from dispatch.engine import run_campaign
from dispatch.mailsink import SinkHandler, SinkRules, list_messages, parse_message, store_message
from dispatch.providers import (
    Delivery,
    EmailBackendProvider,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from tests.servers import PROJECT_ROOT, free_port, wait_until

STOP_TIMEOUT_SECONDS = 10.0

FAIL_REPLY = "5.1.1 <{address}>: mailbox unavailable (development sink rule)"
FLAKY_REPLY = "4.3.0 try again later (development sink rule)"


def plain_email(to: str, subject: str = "Spring sale") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "shop@example.com"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(f"Hello {to}")
    return message


@dataclass
class RunningSink:
    """A SinkHandler served by aiosmtpd in a thread, with what its callbacks received."""

    port: int
    directory: Path
    stored: list[Path] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def send(self, to: str, subject: str = "Spring sale") -> None:
        """Send one message to `to`.

        Raises smtplib.SMTPRecipientsRefused when the sink rejects `to`.
        """
        with smtplib.SMTP("127.0.0.1", self.port, timeout=5) as client:
            client.send_message(plain_email(to, subject), to_addrs=[to])

    def stored_envelopes(self) -> list[str]:
        """Return the X-Envelope-To field of each stored file, oldest first."""
        files = sorted(self.directory.glob("*.eml"))
        return [str(parse_message(path.read_bytes())["X-Envelope-To"]) for path in files]


@pytest.fixture
def start_sink(tmp_path: Path) -> Iterator[Callable[[SinkRules | None], RunningSink]]:
    """Return a function that serves a SinkHandler with the given rules on a free loopback port."""
    controllers: list[Controller] = []

    def start(rules: SinkRules | None) -> RunningSink:
        sink = RunningSink(port=free_port(), directory=tmp_path / f"mail{len(controllers)}")
        handler = SinkHandler(
            sink.directory,
            lambda path, _message: sink.stored.append(path),
            rules,
            lambda address, reply: sink.rejected.append((address, reply)),
        )
        controller = Controller(handler, hostname="127.0.0.1", port=sink.port)
        controller.start()
        controllers.append(controller)
        return sink

    yield start
    for controller in controllers:
        controller.stop()


def demo_rules() -> SinkRules:
    return SinkRules(fail_domain="fail.example.com", flaky_domain="flaky.example.com")


def test_rules_reject_fail_domain(start_sink: Callable[..., RunningSink]) -> None:
    sink = start_sink(demo_rules())
    address = "ada@fail.example.com"

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        sink.send(address)

    code, reply = refused.value.recipients[address]
    assert code == 550
    assert reply.decode() == FAIL_REPLY.format(address=address)
    assert sink.stored == []
    assert list(sink.directory.glob("*.eml")) == []
    assert sink.rejected == [(address, f"550 {FAIL_REPLY.format(address=address)}")]


def test_rules_alternate_flaky_address(start_sink: Callable[..., RunningSink]) -> None:
    sink = start_sink(demo_rules())
    address = "grace@flaky.example.com"

    # It should reject the first RCPT with 451, accept the second and reject the third.
    with pytest.raises(smtplib.SMTPRecipientsRefused) as first:
        sink.send(address, "first")
    assert first.value.recipients[address] == (451, FLAKY_REPLY.encode())
    sink.send(address, "second")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as third:
        sink.send(address, "third")
    assert third.value.recipients[address] == (451, FLAKY_REPLY.encode())

    # It should store only the accepted message.
    assert sink.stored_envelopes() == [address]
    [stored] = sink.stored
    assert parse_message(stored.read_bytes())["Subject"] == "second"
    assert sink.rejected == [(address, f"451 {FLAKY_REPLY}")] * 2


def test_rules_count_each_flaky_address(start_sink: Callable[..., RunningSink]) -> None:
    sink = start_sink(demo_rules())

    with pytest.raises(smtplib.SMTPRecipientsRefused):
        sink.send("grace@flaky.example.com")
    # It should reject another address's first RCPT too, whatever the first one's count.
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        sink.send("alan@flaky.example.com")
    sink.send("grace@flaky.example.com")
    sink.send("alan@flaky.example.com")

    assert sink.stored_envelopes() == ["grace@flaky.example.com", "alan@flaky.example.com"]


def test_rules_ignore_domain_case(start_sink: Callable[..., RunningSink]) -> None:
    sink = start_sink(SinkRules(fail_domain="Fail.Example.COM", flaky_domain="FLAKY.example.com"))

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        sink.send("ada@FAIL.example.com")
    assert refused.value.recipients["ada@FAIL.example.com"][0] == 550
    # It should count one flaky address whatever the case of its domain.
    with pytest.raises(smtplib.SMTPRecipientsRefused) as flaky:
        sink.send("grace@Flaky.Example.Com")
    assert flaky.value.recipients["grace@Flaky.Example.Com"][0] == 451
    sink.send("grace@flaky.example.com")

    assert sink.stored_envelopes() == ["grace@flaky.example.com"]


def test_rules_accept_other_recipients(start_sink: Callable[..., RunningSink]) -> None:
    sink = start_sink(demo_rules())

    sink.send("ada@example.com")
    # It should store a message for its accepted recipients when others are rejected.
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
        refused = client.send_message(
            plain_email("bob@example.com"),
            to_addrs=["bob@example.com", "carol@fail.example.com", "dan@example.org"],
        )

    assert set(refused) == {"carol@fail.example.com"}
    assert sink.stored_envelopes() == ["ada@example.com", "bob@example.com, dan@example.org"]
    assert [address for address, _reply in sink.rejected] == ["carol@fail.example.com"]


def test_rules_with_empty_domains_accept_all(start_sink: Callable[..., RunningSink]) -> None:
    sink = start_sink(SinkRules(fail_domain="", flaky_domain=""))

    sink.send("ada@fail.example.com")
    sink.send("grace@flaky.example.com")

    assert sink.stored_envelopes() == ["ada@fail.example.com", "grace@flaky.example.com"]
    assert sink.rejected == []


def test_sink_without_rules_accepts_all(start_sink: Callable[..., RunningSink]) -> None:
    sink = start_sink(None)

    for address in ("ada@fail.example.com", "grace@flaky.example.com", "alan@example.com"):
        sink.send(address)

    assert sink.stored_envelopes() == [
        "ada@fail.example.com",
        "grace@flaky.example.com",
        "alan@example.com",
    ]
    assert len(sink.stored) == 3
    assert sink.rejected == []


def email_delivery(to: str, attempt: int) -> Delivery:
    return Delivery(
        campaign_id=3,
        recipient_id=14,
        attempt=attempt,
        name="Ada Lovelace",
        email=to,
        phone_number="",
        idempotency_key="campaign-3-recipient-14",
        message=OutboundMessage(channel="email", to=to, subject="Spring sale", text="Hello Ada"),
    )


def test_email_provider_classifies_rejections(
    settings: Any, start_sink: Callable[..., RunningSink]
) -> None:
    sink = start_sink(demo_rules())
    settings.MAILERS = {
        "sink": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": sink.port, "timeout": 5.0},
        }
    }
    provider = EmailBackendProvider(from_email="shop@example.com", mailer="sink")

    # It should fail a recipient at the fail domain permanently, as dispatch expects.
    with pytest.raises(PermanentDeliveryError):
        provider.deliver(email_delivery("ada@fail.example.com", attempt=1))
    # It should fail the flaky recipient's first attempt transiently and deliver the retry.
    with pytest.raises(TransientDeliveryError):
        provider.deliver(email_delivery("grace@flaky.example.com", attempt=1))
    message_id = provider.deliver(email_delivery("grace@flaky.example.com", attempt=2))

    assert message_id == "<campaign-3-recipient-14@example.com>"
    assert sink.stored_envelopes() == ["grace@flaky.example.com"]


@pytest.mark.django_db
def test_demo_campaign_through_sink(
    settings: Any, start_sink: Callable[..., RunningSink], client: Client
) -> None:
    sink = start_sink(SinkRules.from_settings())
    # The default setup: email over SMTP, here to the sink, and SMS simulated.
    settings.DELIVERY_PROVIDER = "dispatch.providers.ChannelRouter"
    settings.EMAIL_DELIVERY_PROVIDER = "dispatch.providers.EmailBackendProvider"
    settings.SMS_DELIVERY_PROVIDER = "dispatch.providers.SimulatedProvider"
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": sink.port, "timeout": 5.0},
        }
    }
    # A retry base of 0 makes the flaky recipient's retry due at once, so the
    # loop sends it before it exits.
    settings.DELIVERY_RETRY_BASE_SECONDS = 0
    call_command("create_demo_campaign", stdout=StringIO())
    campaign = Campaign.objects.get()
    email_recipients = campaign.recipients.exclude(email="").count()
    assert campaign.start()

    run_campaign(campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.progress().failed == 4
    assert campaign.progress().sent == 22
    # It should store one message per accepted email recipient, the flaky one once.
    assert len(sink.stored) == email_recipients - 4
    flaky = campaign.recipients.get(email__endswith="@" + settings.DELIVERY_FLAKY_EMAIL_DOMAIN)
    assert flaky.status == Recipient.Status.SENT
    assert sink.stored_envelopes().count(flaky.email) == 1
    outcomes = DeliveryAttempt.objects.filter(recipient=flaky).order_by("number")
    assert [attempt.outcome for attempt in outcomes] == [
        DeliveryAttempt.Outcome.TRANSIENT_ERROR,
        DeliveryAttempt.Outcome.SENT,
    ]
    # It should fail the fail-domain recipients with the sink's reply.
    failed = campaign.recipients.filter(status=Recipient.Status.FAILED)
    assert {recipient.email.rpartition("@")[2] for recipient in failed} == {
        settings.DELIVERY_FAIL_EMAIL_DOMAIN
    }
    for recipient in failed:
        assert "mailbox unavailable (development sink rule)" in recipient.failure_reason
    # It should store each message personalised for its recipient.
    by_recipient = {
        str(message["X-Envelope-To"]): message
        for message in (parse_message(path.read_bytes()) for path in sink.stored)
    }
    assert by_recipient["ada@example.com"]["Subject"] == (
        "Ada, your Campaign Dispatcher demo message"
    )
    # The user reads them on the development mail page.
    settings.DEBUG = True
    settings.MAIL_SINK_DIR = sink.directory
    page = client.get(reverse("dev_mail:index"))
    assert len(page.context["captured"]) == email_recipients - 4
    assert "Ada, your Campaign Dispatcher demo message" in page.content.decode()


def test_rules_from_settings_use_delivery_domains(settings: Any) -> None:
    settings.DELIVERY_FAIL_EMAIL_DOMAIN = "Bounce.Example.org"
    settings.DELIVERY_FLAKY_EMAIL_DOMAIN = "slow.example.org"

    rules = SinkRules.from_settings()

    assert rules.fail_domain == "bounce.example.org"
    assert rules.flaky_domain == "slow.example.org"
    assert rules.rejection("ada@bounce.example.org") is not None
    assert rules.rejection("ada@fail.example.com") is None


def accepts_connections(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=1) as client:
            client.noop()
    except OSError:
        return False
    return True


SinkProcess = tuple[int, Path, subprocess.Popen[str]]


@pytest.fixture
def start_sink_command(tmp_path: Path) -> Iterator[Callable[..., SinkProcess]]:
    """Return a function that runs `manage.py smtp_sink` with extra arguments on a free port.

    The rules' domains are set in the environment, so a developer's .env
    cannot change them.
    """
    processes: list[subprocess.Popen[str]] = []

    def start(*extra_args: str) -> SinkProcess:
        port = free_port()
        directory = tmp_path / f"mail{len(processes)}"
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "smtp_sink",
                "--port",
                str(port),
                "--directory",
                str(directory),
                *extra_args,
            ],
            cwd=PROJECT_ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "config.test_settings",
                "DELIVERY_FAIL_EMAIL_DOMAIN": "fail.example.com",
                "DELIVERY_FLAKY_EMAIL_DOMAIN": "flaky.example.com",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        wait_until(
            lambda: process.poll() is not None or accepts_connections(port),
            timeout=30,
            failure_message="smtp_sink did not start listening",
        )
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        return port, directory, process

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=STOP_TIMEOUT_SECONDS)


@pytest.fixture
def sink(start_sink_command: Callable[..., SinkProcess]) -> SinkProcess:
    """`manage.py smtp_sink` with its rules on, in a subprocess on a free loopback port."""
    return start_sink_command()


def stop_sink(process: subprocess.Popen[str]) -> str:
    """Stop the sink with SIGTERM, check that it exited cleanly, and return its output."""
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=STOP_TIMEOUT_SECONDS)
    assert process.returncode == 0, stderr
    return stdout


def test_sink_command_stores_message(sink: SinkProcess) -> None:
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

    stdout = stop_sink(process)
    assert f"listening on 127.0.0.1:{port}" in stdout
    assert (
        "Rules on: rejecting recipients at fail.example.com with 550 and every other RCPT "
        "at flaky.example.com with 451 (--no-rules turns them off)"
    ) in stdout
    assert f"{files[0].name}: from shop@example.com to ada@example.com: Spring sale" in stdout


def test_sink_command_logs_rejections(sink: SinkProcess) -> None:
    port, directory, process = sink

    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        refused = client.send_message(
            plain_email("ada@example.com"),
            to_addrs=["ada@example.com", "bob@fail.example.com", "carol@flaky.example.com"],
        )

    assert {address: code for address, (code, _reply) in refused.items()} == {
        "bob@fail.example.com": 550,
        "carol@flaky.example.com": 451,
    }
    [stored] = directory.glob("*.eml")
    assert parse_message(stored.read_bytes())["X-Envelope-To"] == "ada@example.com"
    stdout = stop_sink(process)
    rejections = [line for line in stdout.splitlines() if line.startswith("rejected RCPT")]
    assert rejections == [
        "rejected RCPT bob@fail.example.com: 550 "
        + FAIL_REPLY.format(address="bob@fail.example.com"),
        f"rejected RCPT carol@flaky.example.com: 451 {FLAKY_REPLY}",
    ]


def test_sink_command_without_rules_accepts_all(
    start_sink_command: Callable[..., SinkProcess],
) -> None:
    port, directory, process = start_sink_command("--no-rules")

    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        refused = client.send_message(
            plain_email("bob@fail.example.com"),
            to_addrs=["bob@fail.example.com", "carol@flaky.example.com"],
        )

    assert refused == {}
    [stored] = directory.glob("*.eml")
    assert (
        parse_message(stored.read_bytes())["X-Envelope-To"]
        == "bob@fail.example.com, carol@flaky.example.com"
    )
    stdout = stop_sink(process)
    assert "Rules off: accepting every recipient" in stdout
    assert "rejected RCPT" not in stdout


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
    assert client.get(reverse("dev_mail:html", args=[path.stem])).status_code == 404


@pytest.mark.django_db
def test_navigation_links_mail_only_with_debug(settings: Any, client: Client) -> None:
    link = f'<a href="{reverse("dev_mail:index")}" class="link text-sm">Captured mail</a>'

    settings.DEBUG = True
    with_debug = client.get(reverse("campaigns:index")).content.decode()
    settings.DEBUG = False
    without_debug = client.get(reverse("campaigns:index")).content.decode()

    assert link in with_debug
    assert reverse("dev_mail:index") not in without_debug


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
    frame_url = reverse("dev_mail:html", args=[path.stem])
    assert f'<iframe sandbox src="{frame_url}"' in page
    assert "srcdoc" not in page
    assert "Hello Ada &amp; friends" in page
    assert "https://campaigns.example.com/unsubscribe/abc/" in page


def test_mail_frame_serves_html_under_own_policy(mail_dir: Path, client: Client) -> None:
    html = '<p style="color: red">Hi</p><img src="https://tracker.example/open.gif">'
    path = store_message(mail_dir, "shop@example.com", ["ada@example.com"], captured_email(html))

    response = client.get(reverse("dev_mail:html", args=[path.stem]))

    assert response.status_code == 200
    assert response.content.decode().strip() == html
    policy = response["Content-Security-Policy"].split("; ")
    # It should let the message's inline styles apply, and block scripts
    # and remote images, which would tell a tracker that it was opened.
    assert "default-src 'none'" in policy
    assert "style-src 'unsafe-inline'" in policy
    assert "img-src data: cid:" in policy
    assert "sandbox" in policy
    assert "frame-ancestors 'self'" in policy
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_mail_frame_without_html_part_is_404(mail_dir: Path, client: Client) -> None:
    path = store_message(mail_dir, "shop@example.com", ["ada@example.com"], captured_email())

    response = client.get(reverse("dev_mail:html", args=[path.stem]))

    assert response.status_code == 404


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
