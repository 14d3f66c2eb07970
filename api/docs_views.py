"""The interactive API reference, for signed-in users."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET


@require_GET
def docs(request: HttpRequest) -> HttpResponse:
    """Render Swagger UI from static/build/api-docs.js, reading the API's own schema."""
    context = {"schema_url": reverse("api:openapi-json")}
    return render(request, "api/docs.html", context)
