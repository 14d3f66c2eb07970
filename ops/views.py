"""Liveness, readiness and metrics endpoints for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

import asyncio
import hmac
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_safe

from ops import health, metrics


@login_not_required
@never_cache
# HEAD too: some load balancers probe with it.
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Return 200 while the process serves requests; touches neither PostgreSQL nor Redis."""
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
@require_safe
async def readyz(request: HttpRequest) -> JsonResponse:
    """Run every readiness check in parallel; 200 when all pass, 503 naming those that failed.

    Each check runs in a thread of its own, so a slow server delays this
    response by at most READINESS_CHECK_TIMEOUT_SECONDS and no other view.
    """
    timeout = settings.READINESS_CHECK_TIMEOUT_SECONDS
    names = list(health.CHECKS)
    results = await asyncio.gather(*(_timed_check(name, timeout) for name in names))
    checks = dict(zip(names, results, strict=True))
    failed = [name for name, result in checks.items() if not result["ok"]]
    body: dict[str, object] = {"status": "unavailable" if failed else "ok", "checks": checks}
    if failed:
        body["failed"] = failed
    response = JsonResponse(body, status=503 if failed else 200)
    if failed:
        # Each failed check has logged a warning with its cause. Without this
        # mark, django.request would log every failed probe as a server error.
        response._has_been_logged = True  # type: ignore[attr-defined]
    return response


async def _timed_check(name: str, timeout: float) -> dict[str, object]:
    started = time.perf_counter()
    try:
        # The check's own socket timeouts end its thread; this bounds the wait
        # for it in case one of them does not apply.
        await asyncio.wait_for(asyncio.to_thread(health.CHECKS[name]), timeout + 0.5)
    except health.CheckFailed as exc:
        result: dict[str, object] = {"ok": False, "error": str(exc)}
    except TimeoutError:
        result = {"ok": False, "error": f"timed out after {timeout:g} s"}
    else:
        result = {"ok": True}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


@login_not_required
@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Return the metrics in Prometheus' text format to a scrape with the METRICS_TOKEN token.

    Returns 404 while METRICS_TOKEN is unset, and 401 to a request without
    the token or with another one.
    """
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are turned off: set METRICS_TOKEN to turn them on.")
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), token.encode()
    ):
        response = HttpResponse(
            "Send the METRICS_TOKEN in an 'Authorization: Bearer <token>' header.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
