"""Page-number pagination of the list endpoints, and its shape in the schema."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from django.db.models import Model, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination as _Base
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

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


def page_response(
    request: Request,
    view: APIView,
    rows: QuerySet[Model, _T] | Sequence[_T],
    output: type[serializers.BaseSerializer[_T]],
) -> Response:
    """One page of ``rows`` (``?page``, ``?page_size``), each item rendered by ``output``."""
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(output(page, many=True).data)  # type: ignore[arg-type]  # many=True takes a list; the stubs type one instance
