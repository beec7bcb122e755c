"""Template helpers for the pages: role-aware navigation and number formatting with a "—" fallback."""

from __future__ import annotations

import math
from typing import SupportsFloat, SupportsIndex, TypedDict, TypeVar

from django import template
from django.http import HttpRequest
from django.template import Context

from bms.roles import Role, user_role

register = template.Library()

DASH = "—"

# (label, url, minimum role, url prefix that marks the item current)
NAV_ITEMS: tuple[tuple[str, str, Role, str], ...] = (
    ("Dashboard", "/", Role.VIEWER, "/"),
    ("Programs", "/programs/", Role.VIEWER, "/programs/"),
    ("Models", "/models/", Role.VIEWER, "/models/"),
    ("Schedule", "/schedule/", Role.ANALYST, "/schedule/"),
    ("Chat", "/chat/", Role.ANALYST, "/chat/"),
    ("Monitoring", "/monitoring/", Role.ADMIN, "/monitoring/"),
)


T = TypeVar("T")


class NavItem(TypedDict):
    label: str
    url: str
    current: bool


class Nav(TypedDict):
    items: list[NavItem]


def _missing(value: object) -> bool:
    if value is None or value == "":
        return True
    return isinstance(value, float) and (math.isnan(value) or math.isinf(value))


@register.inclusion_tag("web/_nav.html", takes_context=True)
def main_nav(context: Context) -> Nav:
    """The navigation shows only what the user's role may open."""
    request: HttpRequest = context["request"]
    role = user_role(request.user)
    path = request.path
    items: list[NavItem] = []
    for label, url, min_role, prefix in NAV_ITEMS:
        if role < min_role:
            continue
        current = path == "/" if prefix == "/" else path.startswith(prefix)
        items.append({"label": label, "url": url, "current": current})
    return {"items": items}


@register.simple_tag(takes_context=True)
def role_name(context: Context) -> str:
    return user_role(context["request"].user).label


@register.filter
def dash(value: T) -> T | str:
    """The value, or an em dash when there is nothing to show."""
    return DASH if _missing(value) else value


def _number(value: object) -> float | None:
    """``float(value)``, or None for a missing value (see ``_missing``) or one that is not a number (nor its
    text): the one reading of a value behind every number filter."""
    if _missing(value) or not isinstance(value, (str, bytes, SupportsFloat, SupportsIndex)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@register.filter
def num(value: object, digits: int = 0) -> str:
    """A number with thousands separators and ``digits`` decimals; "—" when missing."""
    number = _number(value)
    return DASH if number is None else f"{number:,.{int(digits)}f}"


@register.filter
def pct(value: object, digits: int = 1) -> str:
    """A ratio (0.42) as a percentage (42.0%)."""
    number = _number(value)
    return DASH if number is None else f"{number * 100:.{int(digits)}f}%"


@register.filter
def money(value: object, digits: int = 0) -> str:
    number = _number(value)
    return DASH if number is None else f"${number:,.{int(digits)}f}"


@register.filter
def get_item(mapping: object, key: object) -> object:
    """``mapping[key]`` for dicts in templates (None when absent)."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None


@register.simple_tag(takes_context=True)
def can(context: Context, role: str) -> bool:
    """``{% can "admin" as is_admin %}``: whether the signed-in user holds ``role`` (or higher)."""
    wanted = Role[role.upper()]
    return user_role(context["request"].user) >= wanted
