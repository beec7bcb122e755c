"""Roles are Django groups: viewer < analyst < admin. A superuser is an admin."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class Role(IntEnum):
    NONE = 0
    VIEWER = 1
    ANALYST = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_GROUPS = {"viewer": Role.VIEWER, "analyst": Role.ANALYST, "admin": Role.ADMIN}


def user_role(user: Any) -> Role:
    """The highest role a user holds (cached on the user object for the request)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Role.NONE
    cached = getattr(user, "_bms_role", None)
    if cached is not None:
        return Role(cached)
    if user.is_superuser:
        role = Role.ADMIN
    else:
        names = set(user.groups.values_list("name", flat=True))
        role = max((ROLE_GROUPS[n] for n in names if n in ROLE_GROUPS), default=Role.NONE)
    user._bms_role = int(role)
    return role


def has_role(user: Any, role: Role) -> bool:
    return user_role(user) >= role
