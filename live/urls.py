from django.urls import path

from live import views

app_name = "live"

urlpatterns = [
    path("campaigns/<int:pk>/stream", views.campaign_stream, name="campaign_stream"),
]
