from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from accounts.workspaces import start_in_first_workspace

        user_logged_in.connect(start_in_first_workspace, dispatch_uid="accounts.start_workspace")
