from django.urls import path
from django.views.generic import RedirectView

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("", views.index, name="index"),
    path("campaigns/", RedirectView.as_view(pattern_name="campaigns:index")),
    path("campaigns/new", views.create, name="create"),
    path("campaigns/<int:pk>", views.detail, name="detail"),
    path("campaigns/<int:pk>/edit", views.edit, name="edit"),
    path("campaigns/<int:pk>/delete", views.delete, name="delete"),
    path("campaigns/<int:pk>/dispatch", views.dispatch, name="dispatch"),
]
