from django.apps import AppConfig


class SuppressionsConfig(AppConfig):
    name = "suppressions"
    verbose_name = "Suppression list"

    def ready(self) -> None:
        from suppressions import checks, redaction  # noqa: F401 (checks registers itself)

        redaction.install()
