"""DRF permissions per role (see bms.roles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from bms.roles import Role, has_role

if TYPE_CHECKING:  # rest_framework.views reads the settings that name these classes: a runtime import is a cycle
    from rest_framework.views import APIView


class _RolePermission(BasePermission):
    role = Role.VIEWER
    message = "This action needs a higher role."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return has_role(request.user, self.role)


class IsViewer(_RolePermission):
    role = Role.VIEWER
    message = "You need the viewer role (or higher) for this."


class IsAnalyst(_RolePermission):
    role = Role.ANALYST
    message = "You need the analyst role (or higher) for this."


class IsAdmin(_RolePermission):
    role = Role.ADMIN
    message = "You need the admin role for this."
