from __future__ import annotations

from typing import TYPE_CHECKING

from django.urls import path

from chat.consumers import ChatConsumer

if TYPE_CHECKING:
    from channels.routing import URLRouter, _ExtendedURLPattern

websocket_urlpatterns: list[_ExtendedURLPattern | URLRouter] = [
    # django-stubs' path() takes only Django views and returns a plain URLPattern; channels routes an ASGI
    # app with the same path().
    path("ws/chat/<str:session_id>/", ChatConsumer.as_asgi()),  # type: ignore[arg-type,list-item]
]
