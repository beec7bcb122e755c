"""Template helpers for the pages: role-aware navigation and number formatting with a "—" fallback."""

from __future__ import annotations

import math
from typing import Any

from django import template
from django.http import HttpRequest

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


def _missing(value: Any) -> bool:
    if value is None or value == "":
        return True
    return isinstance(value, float) and (math.isnan(value) or math.isinf(value))


@register.inclusion_tag("web/_nav.html", takes_context=True)
def main_nav(context: dict[str, Any]) -> dict[str, Any]:
    """The navigation shows only what the user's role may open."""
    request: HttpRequest = context["request"]
    role = user_role(request.user)
    path = request.path
    items = []
    for label, url, min_role, prefix in NAV_ITEMS:
        if role < min_role:
            continue
        current = path == "/" if prefix == "/" else path.startswith(prefix)
        items.append({"label": label, "url": url, "current": current})
    return {"items": items}


@register.simple_tag(takes_context=True)
def role_name(context: dict[str, Any]) -> str:
    return user_role(context["request"].user).label


@register.filter
def dash(value: Any) -> Any:
    """The value, or an em dash when there is nothing to show."""
    return DASH if _missing(value) else value


@register.filter
def num(value: Any, digits: int = 0) -> str:
    """A number with thousands separators and ``digits`` decimals; "—" when missing."""
    if _missing(value):
        return DASH
    try:
        number = float(value)
    except (TypeError, ValueError):
        return DASH
    return f"{number:,.{int(digits)}f}"


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    """A ratio (0.42) as a percentage (42.0%)."""
    if _missing(value):
        return DASH
    try:
        return f"{float(value) * 100:.{int(digits)}f}%"
    except (TypeError, ValueError):
        return DASH


@register.filter
def money(value: Any, digits: int = 0) -> str:
    if _missing(value):
        return DASH
    try:
        return f"${float(value):,.{int(digits)}f}"
    except (TypeError, ValueError):
        return DASH


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """``mapping[key]`` for dicts in templates (None when absent)."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None


@register.simple_tag(takes_context=True)
def can(context: dict[str, Any], role: str) -> bool:
    """``{% can "admin" as is_admin %}``: whether the signed-in user holds ``role`` (or higher)."""
    wanted = Role[role.upper()]
    return user_role(context["request"].user) >= wanted
