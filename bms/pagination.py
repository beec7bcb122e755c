"""Page-number pagination of the list endpoints, and its shape in the schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination as _Base

_T = TypeVar("_T")


class PageNumberPagination(_Base):
    page_size_query_param = "page_size"
    max_page_size = 500


# The list views are APIViews that paginate by hand, so drf-spectacular cannot see the pagination:
# they declare it with these (a page past the end is 404 ``not_found``).
PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="Page number, from 1."),
    OpenApiParameter("page_size", OpenApiTypes.INT, description="Items per page (default 50, at most 500)."),
]


def paginated(name: str, item: serializers.BaseSerializer[_T]) -> serializers.Serializer[Mapping[str, object]]:
    """The schema of a page of ``item``: ``{"count", "next", "previous", "results": [item...]}``."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )
