from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class BmsConfig(AppConfig):
    name = "bms"
    verbose_name = "Platform"
    default = True

    def ready(self) -> None:
        from bms import auth  # noqa: F401  (login audit receivers)
        from bms.wiring import connect

        connect()  # the cross-app event subscribers, health checks and metric collectors (bms/wiring.py)


class BmsAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with a site that records every admin change as an AuditEvent."""

    default = False
    default_site = "bms.admin_site.AuditedAdminSite"
