"""The django-ninja API object, its authentication and its error handlers."""

from __future__ import annotations

import logging
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.operation import Operation

from api.auth import TokenAuth
from api.errors import ApiError, error_response

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Create campaigns with their recipients, dispatch them and follow their
progress. Every request needs `Authorization: Bearer <token>`, with a token
from the API tokens page of a workspace; the token acts as its creator in
that workspace. Errors are `{"code": ..., "message": ...}`. docs/api.md in
the repository describes every endpoint, the error codes and the limits.
"""


class DispatcherApi(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        # The view function's name, such as create_campaign, rather than
        # ninja's default, which starts with the module's path.
        return str(operation.view_func.__name__)


api = DispatcherApi(
    title="Campaign Dispatcher API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    openapi_url="/openapi.json",
    # The docs page is a view of its own (api/docs_views.py), because
    # ninja's page loads Swagger UI from a CDN with an inline script.
    docs_url=None,
    auth=TokenAuth(),
)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(exc.status, exc.code, exc.message, **exc.extra)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [_row_error(error) for error in exc.errors]
    return error_response(
        422,
        "validation_error",
        "The request's body or parameters are invalid; see errors.",
        errors=errors,
    )


def _row_error(error: dict[str, Any]) -> dict[str, Any]:
    """Turn one pydantic error into a RowError: the recipient row index, if any, and
    the field's path."""
    location = [str(part) for part in error.get("loc", ())]
    # ninja puts where the value came from first: body, query, path or header.
    if location and location[0] in {"body", "query", "path", "header"}:
        location = location[1:]
    if location and location[0] == "payload":
        location = location[1:]
    row = None
    if len(location) >= 2 and location[0] == "recipients" and location[1].isdigit():
        row = int(location[1])
        location = location[2:]
    return {
        "row": row,
        "field": ".".join(location) or None,
        "message": str(error.get("msg", "Invalid value.")),
    }


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(404, "not_found", "No campaign or recipient matches this URL.")


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(
        401, "token_missing", "Send Authorization: Bearer <token> with an API token."
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        # Ninja's only 400: a body that does not parse. Its message, with
        # DEBUG on, shows the parser's internals.
        return error_response(
            400,
            "invalid_json",
            "The request body is not valid JSON: send one JSON object, encoded in UTF-8.",
        )
    return error_response(exc.status_code, "http_error", str(exc))


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("API request %s %s failed", request.method, request.path)
    return error_response(
        500, "server_error", "The server failed to handle the request. Try again later."
    )
