from django.urls import path

from suppressions import views

app_name = "suppressions"

urlpatterns = [
    path("suppressions/", views.index, name="index"),
    path("suppressions/<int:pk>/delete", views.delete, name="delete"),
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("u/<str:token>/one-click", views.one_click, name="one_click"),
]
