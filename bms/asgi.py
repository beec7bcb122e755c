"""ASGI entry point, served by uvicorn: WebSockets through Channels, HTTP through Django's standard handler.

In production uvicorn serves ``/ws/`` only (the proxy routes the rest to gunicorn, bms/gunicorn_conf.py);
its HTTP side answers the health probes and ``make run``, where one uvicorn process serves everything.
"""

import os
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

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

# uvicorn imports this module inside its event loop, where Django refuses database calls: warm up on a thread.
with ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-up") as warm_up:
    serving_process_ready(warm_up)
