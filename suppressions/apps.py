from django.apps import AppConfig


class SuppressionsConfig(AppConfig):
    name = "suppressions"
    verbose_name = "Suppression list"

    def ready(self) -> None:
        from suppressions import checks  # noqa: F401 (registers the deploy check of SITE_URL)
