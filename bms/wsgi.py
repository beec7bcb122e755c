"""WSGI entry point (HTTP only; WebSockets need the ASGI application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")
application = get_wsgi_application()

from bms.startup import serving_process_ready  # noqa: E402

serving_process_ready()
