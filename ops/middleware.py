"""Give every request an id, echo it in X-Request-ID and bind it to the request's log records."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase, StreamingHttpResponse

from ops import context

HEADER = "X-Request-ID"
# An incoming id is kept when it is 1 to 128 of these characters, which
# covers UUIDs and the ids of common proxies and tracing headers. Any other
# value is replaced, so that a client cannot put arbitrary text into the logs.
_VALID_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def request_id_of(request: HttpRequest) -> str:
    """Return the request's incoming X-Request-ID if it is valid, or a new random id."""
    incoming = request.headers.get(HEADER, "")
    if _VALID_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Set request.request_id, bind it for logging and send it back in X-Request-ID.

    A streaming response's body runs after the middleware has returned, so
    under ASGI its iterator is wrapped to bind the id again while it runs.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._call_async(request)
        request_id = request_id_of(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        with context.bind(request_id=request_id):
            response = cast(HttpResponseBase, self.get_response(request))
        response[HEADER] = request_id
        return response

    async def _call_async(self, request: HttpRequest) -> HttpResponseBase:
        request_id = request_id_of(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        with context.bind(request_id=request_id) as ids:
            response = await cast(Awaitable[HttpResponseBase], self.get_response(request))
        if isinstance(response, StreamingHttpResponse) and response.is_async:
            response.streaming_content = _bound(response.streaming_content, ids)  # type: ignore[arg-type]
        response[HEADER] = request_id
        return response


async def _bound(content: AsyncIterator[bytes], ids: dict[str, object]) -> AsyncIterator[bytes]:
    with context.bind(**ids):
        async for chunk in content:
            yield chunk
