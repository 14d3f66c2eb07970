from django.urls import path

from dispatch import mail_views

app_name = "dev_mail"

urlpatterns = [
    path("dev/mail/", mail_views.mail_index, name="index"),
    path("dev/mail/<str:name>/", mail_views.mail_detail, name="detail"),
    path("dev/mail/<str:name>/html", mail_views.mail_html, name="html"),
]
