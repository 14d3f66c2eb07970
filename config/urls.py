from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("campaigns.urls")),
    path("", include("live.urls")),
    path("", include("dispatch.urls")),
    path("campaigns/<int:pk>/imports/", include("imports.urls")),
    path("", include("suppressions.urls")),
    path("", include("ops.urls")),
]

handler400 = "config.errors.bad_request"
