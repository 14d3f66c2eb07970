"""Run the development SMTP sink: every message it accepts goes to a .eml file."""

from __future__ import annotations

import asyncio
import signal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dispatch.mailsink import SinkHandler, SinkRules


class Command(BaseCommand):
    help = (
        "Run an SMTP server for development that stores each message it accepts as a "
        ".eml file in MAIL_SINK_DIR (var/mail/ by default), for the /dev/mail/ page. "
        "It rejects recipients at DELIVERY_FAIL_EMAIL_DOMAIN with 550 and every other "
        "RCPT of a recipient at DELIVERY_FLAKY_EMAIL_DOMAIN with 451, unless --no-rules "
        "is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1)."
        )
        parser.add_argument(
            "--port", type=int, default=1025, help="Port to listen on (default 1025)."
        )
        parser.add_argument(
            "--directory",
            type=Path,
            default=None,
            help="Folder for the .eml files (default: the MAIL_SINK_DIR setting).",
        )
        parser.add_argument(
            "--no-rules",
            action="store_false",
            dest="rules",
            help="Accept every recipient: turn off the fail and flaky domain rules.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["directory"] or Path(settings.MAIL_SINK_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        rules = SinkRules.from_settings() if options["rules"] else None
        handler = SinkHandler(directory, self._report, rules, self._report_rejection)
        try:
            asyncio.run(self._serve(handler, options["host"], options["port"], directory))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']}: {exc.strerror or exc}; "
                "stop what uses the port or pass another --port."
            ) from exc

    async def _serve(self, handler: SinkHandler, host: str, port: int, directory: Path) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="localhost"), host=host, port=port
        )
        stopped = asyncio.Event()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stopped.set)
        self.stdout.write(f"SMTP sink listening on {host}:{port}, storing messages in {directory}")
        self.stdout.write(self._describe_rules(handler.rules))
        self.stdout.flush()
        await stopped.wait()
        server.close()
        await server.wait_closed()
        self.stdout.write("SMTP sink stopped")

    def _report(self, path: Path, message: EmailMessage) -> None:
        self.stdout.write(
            f"{path.name}: from {message.get('From', '')} to {message.get('To', '')}: "
            f"{message.get('Subject', '')}"
        )
        self.stdout.flush()

    def _report_rejection(self, address: str, reply: str) -> None:
        self.stdout.write(f"rejected RCPT {address}: {reply}")
        self.stdout.flush()

    def _describe_rules(self, rules: SinkRules | None) -> str:
        if rules is None:
            return "Rules off: accepting every recipient"
        parts = []
        if rules.fail_domain:
            parts.append(f"rejecting recipients at {rules.fail_domain} with 550")
        if rules.flaky_domain:
            parts.append(f"every other RCPT at {rules.flaky_domain} with 451")
        if not parts:
            return "Rules on, but both domain settings are empty: accepting every recipient"
        return "Rules on: " + " and ".join(parts) + " (--no-rules turns them off)"
