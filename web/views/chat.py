"""Chat: the user's sessions, a conversation page that streams answers over ws/chat/<session_id>/."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from bms.errors import NotFoundError
from bms.roles import Role
from bms.users import AuthenticatedHttpRequest, User
from chat import services as chat_services
from chat.history import SessionRecord
from web.views.base import PageView

SESSION_LIMIT = 30


def session_list(user: User) -> list[SessionRecord]:
    """The user's recent sessions, from the configured history store (Django or MongoDB)."""
    return list(chat_services.chat_session_list(user=user, limit=SESSION_LIMIT))


class ChatIndexPage(PageView):
    min_role = Role.ANALYST

    def get(self, request: AuthenticatedHttpRequest) -> HttpResponse:
        return render(
            request,
            "web/chat.html",
            {"sessions": session_list(request.user), "session": None, "messages": []},
        )


class ChatNewPage(PageView):
    min_role = Role.ANALYST

    def post(self, request: AuthenticatedHttpRequest) -> HttpResponse:
        session = chat_services.chat_session_create(user=request.user, title=request.POST.get("title", "")[:200])
        return redirect(reverse("web:chat-session", args=[session.id]))


class ChatSessionPage(PageView):
    min_role = Role.ANALYST

    def get(self, request: AuthenticatedHttpRequest, session_id: str) -> HttpResponse:
        try:
            session, messages = chat_services.chat_history(user=request.user, session_id=session_id)
        except NotFoundError as exc:
            raise Http404(exc.message) from exc
        return render(
            request,
            "web/chat.html",
            {
                "sessions": session_list(request.user),
                "session": session,
                "messages": [m.as_dict() for m in messages],
            },
        )
