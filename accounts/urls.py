from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from accounts import views, workspace_views
from accounts.forms import PasswordResetForm
from api import token_views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workspace/", workspace_views.workspace, name="workspace"),
    path("workspace/new", workspace_views.create, name="workspace_create"),
    path("workspace/switch", views.switch, name="workspace_switch"),
    path("workspace/rename", workspace_views.rename, name="workspace_rename"),
    path("workspace/delete", workspace_views.delete, name="workspace_delete"),
    path("workspace/members", workspace_views.member_add, name="member_add"),
    path("workspace/members/<int:pk>/role", workspace_views.member_role, name="member_role"),
    path("workspace/members/<int:pk>/remove", workspace_views.member_remove, name="member_remove"),
    path("workspace/tokens", token_views.tokens, name="api_tokens"),
    path("workspace/tokens/<int:pk>/revoke", token_views.revoke, name="api_token_revoke"),
    path(
        "password/change/",
        auth_views.PasswordChangeView.as_view(
            template_name="accounts/password_change.html",
            success_url=reverse_lazy("accounts:password_change_done"),
        ),
        name="password_change",
    ),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="accounts/password_change_done.html"
        ),
        name="password_change_done",
    ),
    path(
        "password/reset/",
        auth_views.PasswordResetView.as_view(
            template_name="accounts/password_reset.html",
            form_class=PasswordResetForm,
            email_template_name="accounts/password_reset_email.txt",
            subject_template_name="accounts/password_reset_subject.txt",
            success_url=reverse_lazy("accounts:password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="accounts/password_reset_confirm.html",
            success_url=reverse_lazy("accounts:password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
]
