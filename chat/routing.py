from typing import Any

from django.urls import path

from chat.consumers import ChatConsumer

# Channels' URLRouter takes Django URL patterns whose view is an ASGI application; the stubs of
# django.urls.path only know HTTP views, so the list is typed loosely for URLRouter.
websocket_urlpatterns: list[Any] = [
    path("ws/chat/<str:session_id>/", ChatConsumer.as_asgi()),  # type: ignore[arg-type]
]
