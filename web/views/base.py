"""What every page shares: login required, a minimum role, and an HTML 403 for the rest."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views import View

from bms.roles import Role, has_role, user_role
from bms.services import user_refresh_tokens_revoke


def forbidden(request: HttpRequest, *, needed: Role) -> HttpResponse:
    return render(request, "web/403.html", {"needed": needed.label, "role": user_role(request.user).label}, status=403)


class PageView(LoginRequiredMixin, View):
    """A page for signed-in users holding at least ``min_role``."""

    min_role: Role = Role.VIEWER

    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not has_role(request.user, self.min_role):
            return forbidden(request, needed=self.min_role)
        try:
            return super().dispatch(request, *args, **kwargs)
        except Http404 as exc:  # the project's 404 handler answers JSON (API); pages answer HTML
            return render(request, "web/404.html", {"message": str(exc)}, status=404)

    def role(self) -> Role:
        return user_role(self.request.user)


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["demo_users"] = settings.DEMO_USERS
        return context


class LogoutView(auth_views.LogoutView):
    """Signing out of the pages also revokes the user's refresh tokens (API clients sign in again)."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.user.is_authenticated:
            user_refresh_tokens_revoke(user=request.user)
        return super().post(request, *args, **kwargs)
