"""ASGI entry point: HTTP through Django (bms.asgi_handler), WebSockets through Channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")

from bms.asgi_handler import get_asgi_http_application

django_asgi_app = get_asgi_http_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from bms.startup import serving_process_ready  # noqa: E402
from chat.auth import JwtOrSessionAuthMiddleware  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(JwtOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)

serving_process_ready(django_asgi_app.executor)
