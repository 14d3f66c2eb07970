"""JSON errors and the request body limit for everything under /api/v1/.

The middleware sits before every middleware that could read a request
body. It reads an API request's body itself, up to API_MAX_BODY_BYTES, so
a longer body gets 413 whether or not it declares its length. Responses
that the API's own handlers did not make, such as the 404 of an unknown
URL, the 405 of a wrong method and the 500 of an unhandled exception,
are turned into the API's JSON error body. The HTML docs page is left alone.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from api.errors import error_response

API_PREFIX = "/api/v1/"
DOCS_PATH = API_PREFIX + "docs"

_METHODS_WITH_BODY = {"POST", "PUT", "PATCH", "DELETE"}

# Codes and messages for error responses that reach the middleware without
# a JSON body.
_STANDARD_ERRORS = {
    400: ("bad_request", "The request is malformed."),
    403: ("forbidden", "The request is not allowed."),
    404: ("not_found", "No API endpoint or object matches this URL."),
    405: ("method_not_allowed", "The endpoint does not allow this method."),
    413: ("body_too_large", "The request body is too large."),
    500: ("server_error", "The server failed to handle the request. Try again later."),
}


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX) and request.path != DOCS_PATH


class ApiMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not is_api_request(request):
            return self.get_response(request)
        if request.method in _METHODS_WITH_BODY:
            too_large = _read_body(request)
            if too_large is not None:
                return too_large
        response = self.get_response(request)
        return _as_json_error(response)


def _read_body(request: HttpRequest) -> HttpResponse | None:
    """Read the request body into `request.body`; returns a 413 response when it is too long."""
    limit = settings.API_MAX_BODY_BYTES
    message = (
        f"The request body is larger than {limit} bytes (API_MAX_BODY_BYTES). "
        "Send the recipients in several requests."
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error_response(400, "bad_request", "The Content-Length header is not a number.")
    if declared > limit:
        return error_response(413, "body_too_large", message, max_bytes=limit)
    body = request.read(limit + 1)
    if len(body) > limit:
        return error_response(413, "body_too_large", message, max_bytes=limit)
    # HttpRequest.body returns _body once it is set, and skips the check
    # against DATA_UPLOAD_MAX_MEMORY_SIZE, the limit of form posts.
    request._body = body
    return None


def _as_json_error(response: HttpResponseBase) -> HttpResponseBase:
    if response.status_code < 400:
        return response
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    code, message = _STANDARD_ERRORS.get(
        response.status_code, ("error", f"The request failed with HTTP {response.status_code}.")
    )
    converted = error_response(response.status_code, code, message)
    for header in ("Allow", "Retry-After"):
        if header in response:
            converted[header] = response[header]
    return converted
