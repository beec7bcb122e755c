"""Auth endpoints of the API (JWT pair, refresh, logout)."""

from django.urls import path

from bms.apis import LogoutApi, TokenObtainApi, TokenRefreshApi

urlpatterns = [
    path("auth/token", TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh", TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout", LogoutApi.as_view(), name="auth-logout"),
]
