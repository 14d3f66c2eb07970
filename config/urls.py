from django.contrib import admin
from django.urls import include, path

from api.docs_views import docs as api_docs

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("campaigns.urls")),
    path("", include("live.urls")),
    path("", include("dispatch.urls")),
    path("campaigns/<int:pk>/imports/", include("imports.urls")),
    path("", include("suppressions.urls")),
    path("", include("ops.urls")),
    # Before the API's own URLs, which it shares a prefix with.
    path("api/v1/docs", api_docs, name="api_docs"),
    path("api/v1/", include(("api.urls", "api"), namespace="api")),
]

handler400 = "config.errors.bad_request"
