"""Server-sent-events messages as a browser's EventSource reads them."""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from live.feeds import RECONNECT_DELAY_MS

# Seconds a read may block before the test fails. Every expected event is due well before.
READ_TIMEOUT_SECONDS = 5.0

# The (method, target) of a replace stream; the method is "morph" for the header, "" for rows.
REPLACE_STREAM = re.compile(r'<turbo-stream action="replace"(?: method="(\w+)")? target="([^"]+)">')


@dataclass(frozen=True)
class Message:
    """One SSE message: its id and retry fields, its data lines joined, its comment lines."""

    id: str | None
    data: str
    comments: list[str]
    retry: int | None = None

    @property
    def streams(self) -> list[tuple[str, str]]:
        """The (method, target) of each replace stream in the data."""
        return REPLACE_STREAM.findall(self.data)

    @property
    def targets(self) -> list[str]:
        return [target for _, target in self.streams]


def parse_message(lines: list[str]) -> Message:
    """Parse the lines of one message as an EventSource does. Fails on unknown fields."""
    event_id = None
    retry = None
    data = []
    comments = []
    for line in lines:
        if line.startswith(":"):
            comments.append(line[1:].strip())
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            event_id = value
        elif field == "data":
            data.append(value)
        elif field == "retry":
            retry = int(value)
        else:
            raise AssertionError(f"unexpected field {field!r} in {lines}")
    return Message(event_id, "\n".join(data), comments, retry)


class EventStream:
    """A streaming GET of a server-sent-events URL, read one message at a time.

    A message is the lines up to the next blank line: an event, a `retry:`
    field, an id with a comment, or a comment alone.
    """

    def __init__(
        self,
        base_url: str,
        path: str,
        headers: dict[str, str] | None = None,
        timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self.connection = http.client.HTTPConnection(urlsplit(base_url).netloc, timeout=timeout)
        request_headers = {"Accept": "text/event-stream", **(headers or {})}
        self.connection.request("GET", path, headers=request_headers)
        self.response = self.connection.getresponse()

    def next_block(self) -> list[str]:
        """Read the next non-empty block. Raises TimeoutError if none arrives in time."""
        lines: list[str] = []
        while True:
            raw = self.response.readline()
            if not raw:
                raise AssertionError(f"The stream ended. Lines read since the last block: {lines}")
            line = raw.decode().removesuffix("\n")
            if line:
                lines.append(line)
            elif lines:
                return lines

    def next_event(self) -> Message:
        """Read messages until one carries data, skipping keep-alives and positions.

        Fails when none arrives within READ_TIMEOUT_SECONDS, however many
        keep-alives do.
        """
        deadline = time.monotonic() + READ_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            message = parse_message(self.next_block())
            if message.data:
                return message
        raise AssertionError(f"no event within {READ_TIMEOUT_SECONDS} s, only comments")

    def events_until(self, condition: Callable[[list[Message]], bool]) -> list[Message]:
        """Read events until `condition` holds for those read; fails after READ_TIMEOUT_SECONDS."""
        events: list[Message] = []
        deadline = time.monotonic() + READ_TIMEOUT_SECONDS
        while not condition(events):
            assert time.monotonic() < deadline, f"condition not met by the events {events}"
            events.append(self.next_event())
        return events

    def start(self) -> Message:
        """Read the retry field and the first event, which a fresh viewer gets at once."""
        assert self.next_block() == [f"retry: {RECONNECT_DELAY_MS}"]
        return self.next_event()

    def close(self) -> None:
        self.response.close()
        self.connection.close()
