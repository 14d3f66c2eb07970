"""The JSON error body of the API, and the exception that carries it.

Every error under /api/v1/ is `{"code": ..., "message": ...}`, with an
`errors` list for validation errors and further fields for some codes
(such as `status` for invalid_transition). Codes are stable; messages
may change.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


class ApiError(Exception):
    """An error response: HTTP status, stable code, message and extra fields."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **extra}


def error_response(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    response = JsonResponse(error_body(code, message, **extra), status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response
