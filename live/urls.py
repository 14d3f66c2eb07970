from django.urls import path

from live import views

app_name = "live"

urlpatterns = [
    path("campaigns/stream", views.index_stream, name="index_stream"),
    path("campaigns/<int:pk>/stream", views.campaign_stream, name="campaign_stream"),
]
