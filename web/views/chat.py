"""Chat: the user's sessions, a conversation page that streams answers over ws/chat/<session_id>/."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from bms.errors import NotFoundError
from bms.roles import Role
from web import sources
from web.views.base import PageView

SESSION_LIMIT = 30


def session_list(user: Any) -> list[Any]:
    """The user's recent sessions, from the configured history store (Django or MongoDB)."""
    sessions = sources.optional("chat.services", "chat_session_list")
    if sessions is None:
        return []
    return list(sessions(user=user, limit=SESSION_LIMIT))


def chat_available() -> bool:
    return sources.optional("chat.services", "chat_history") is not None


class ChatIndexPage(PageView):
    min_role = Role.ANALYST

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(
            request,
            "web/chat.html",
            {"available": chat_available(), "sessions": session_list(request.user), "session": None, "messages": []},
        )


class ChatNewPage(PageView):
    min_role = Role.ANALYST

    def post(self, request: HttpRequest) -> HttpResponse:
        create = sources.optional("chat.services", "chat_session_create")
        if create is None:
            raise Http404("Chat is not available yet.")
        session = create(user=request.user, title=request.POST.get("title", "")[:200])
        return redirect(reverse("web:chat-session", args=[session.id]))


class ChatSessionPage(PageView):
    min_role = Role.ANALYST

    def get(self, request: HttpRequest, session_id: str) -> HttpResponse:
        history = sources.optional("chat.services", "chat_history")
        if history is None:
            raise Http404("Chat is not available yet.")
        try:
            session, messages = history(user=request.user, session_id=session_id)
        except NotFoundError as exc:
            raise Http404(exc.message) from exc
        return render(
            request,
            "web/chat.html",
            {
                "available": True,
                "sessions": session_list(request.user),
                "session": session,
                "messages": [m.as_dict() for m in messages],
            },
        )
