"""Roles are Django groups: viewer < analyst < admin. A superuser is an admin."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bms.users import RequestUser


class Role(IntEnum):
    NONE = 0
    VIEWER = 1
    ANALYST = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_GROUPS = {"viewer": Role.VIEWER, "analyst": Role.ANALYST, "admin": Role.ADMIN}
_CACHED_ROLE = "_bms_role"  # attribute set on the user object for the request


def user_role(user: RequestUser | None) -> Role:
    """The highest role a user holds (cached on the user object for the request)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Role.NONE
    cached = getattr(user, _CACHED_ROLE, None)
    if cached is not None:
        return Role(cached)
    if user.is_superuser:
        role = Role.ADMIN
    else:
        names = set(user.groups.values_list("name", flat=True))
        role = max((ROLE_GROUPS[n] for n in names if n in ROLE_GROUPS), default=Role.NONE)
    setattr(user, _CACHED_ROLE, int(role))
    return role


def has_role(user: RequestUser | None, role: Role) -> bool:
    return user_role(user) >= role
