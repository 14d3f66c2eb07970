from django.urls import path
from django.views.generic import RedirectView

from audit import views as audit_views
from campaigns import export, preview_views, recipient_views, send_test_views, views

app_name = "campaigns"

urlpatterns = [
    path("", views.index, name="index"),
    path("campaigns/", RedirectView.as_view(pattern_name="campaigns:index")),
    path("campaigns/new", views.create, name="create"),
    path("campaigns/<int:pk>", views.detail, name="detail"),
    path("campaigns/<int:pk>/edit", views.edit, name="edit"),
    path("campaigns/<int:pk>/delete", views.delete, name="delete"),
    path("campaigns/<int:pk>/dispatch", views.dispatch, name="dispatch"),
    path("campaigns/<int:pk>/pause", views.pause, name="pause"),
    path("campaigns/<int:pk>/resume", views.resume, name="resume"),
    path("campaigns/<int:pk>/cancel", views.cancel, name="cancel"),
    path("campaigns/<int:pk>/retry-failed", views.retry_failed, name="retry_failed"),
    path("campaigns/<int:pk>/duplicate", views.duplicate, name="duplicate"),
    path("campaigns/<int:pk>/audit", audit_views.campaign_log, name="audit"),
    path("campaigns/<int:pk>/export.csv", export.export_csv, name="export"),
    path("campaigns/<int:pk>/preview", preview_views.preview, name="preview"),
    path("campaigns/<int:pk>/preview/email.html", preview_views.preview_html, name="preview_html"),
    path("campaigns/<int:pk>/test-send", send_test_views.send_test, name="test_send"),
    path("campaigns/<int:pk>/recipients/new", recipient_views.create, name="recipient_create"),
    path(
        "campaigns/<int:pk>/recipients/<int:recipient_pk>/edit",
        recipient_views.edit,
        name="recipient_edit",
    ),
    path(
        "campaigns/<int:pk>/recipients/<int:recipient_pk>/delete",
        recipient_views.delete,
        name="recipient_delete",
    ),
    path(
        "campaigns/<int:pk>/recipients/<int:recipient_pk>/attempts",
        views.attempts,
        name="attempts",
    ),
]
