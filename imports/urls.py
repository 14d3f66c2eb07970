"""Import pages, under campaigns/<pk>/imports/ (see config/urls.py)."""

from django.urls import path

from imports import views

app_name = "imports"

urlpatterns = [
    path("new", views.new, name="new"),
    path("<int:import_id>", views.detail, name="detail"),
    path("<int:import_id>/confirm", views.confirm, name="confirm"),
    path("<int:import_id>/discard", views.discard, name="discard"),
    path("<int:import_id>/cancel", views.cancel, name="cancel"),
    path("<int:import_id>/run-again", views.run_again, name="run_again"),
    path("<int:import_id>/report.csv", views.report, name="report"),
]
