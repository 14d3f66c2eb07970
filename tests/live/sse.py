"""Server-sent-events messages as a browser's EventSource reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
