from django.apps import AppConfig


class BmsConfig(AppConfig):
    name = "bms"
    verbose_name = "Platform"

    def ready(self) -> None:
        from bms import auth  # noqa: F401  (login audit receivers)
