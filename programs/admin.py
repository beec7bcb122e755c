"""Django admin for the broadcast data: read and correct rows, search, filter."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from programs.aggregates import airings_aggregate, airings_frame
from programs.models import Airing, Channel, DataVersion, Program
from programs.services import data_version_bump


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin[Channel]):
    list_display = ("code", "name", "universe_households", "time_zone")
    search_fields = ("code", "name")
    ordering = ("code",)


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin[Program]):
    list_display = ("external_id", "title", "channel", "genre", "content_rating", "duration_minutes", "is_live")
    list_filter = ("genre", "content_rating", "is_live", "channel")
    search_fields = ("external_id", "title")
    list_select_related = ("channel",)
    autocomplete_fields = ("channel",)
    readonly_fields = ("created_at",)


@admin.register(Airing)
class AiringAdmin(admin.ModelAdmin[Airing]):
    list_display = (
        "start",
        "program",
        "channel",
        "duration_minutes",
        "is_premiere",
        "is_finale",
        "season",
        "episode",
        "rating",
        "audience",
        "revenue",
        "engagement",
        "data_version",
    )
    list_filter = ("channel", "is_premiere", "is_finale", "program__genre", ("start", admin.DateFieldListFilter))
    search_fields = ("program__title", "program__external_id")
    list_select_related = ("program", "channel")
    autocomplete_fields = ("program", "channel")
    date_hierarchy = "start"
    readonly_fields = ("data_version",)
    show_full_result_count = False  # COUNT(*) over 50k+ airings on every page is wasted work

    # A hand edit changes the data models are trained on, so it is a new data version like any import.
    def save_model(self, request: HttpRequest, obj: Airing, form: forms.ModelForm[Airing], change: bool) -> None:
        with transaction.atomic():
            version = data_version_bump(
                source=DataVersion.Source.EDIT, description=f"admin edit by {request.user}", rows_affected=1
            )
            obj.data_version = version.pk
            before = airings_frame(Airing.objects.filter(pk=obj.pk)) if change else None
            super().save_model(request, obj, form, change)
            airings_aggregate(added=airings_frame(Airing.objects.filter(pk=obj.pk)), removed=before)

    def delete_model(self, request: HttpRequest, obj: Airing) -> None:
        with transaction.atomic():
            data_version_bump(
                source=DataVersion.Source.EDIT, description=f"admin delete by {request.user}", rows_affected=1
            )
            before = airings_frame(Airing.objects.filter(pk=obj.pk))
            super().delete_model(request, obj)
            airings_aggregate(removed=before)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Airing]) -> None:
        with transaction.atomic():
            count = queryset.count()
            data_version_bump(
                source=DataVersion.Source.EDIT, description=f"admin delete by {request.user}", rows_affected=count
            )
            before = airings_frame(queryset)
            super().delete_queryset(request, queryset)
            airings_aggregate(removed=before)


@admin.register(DataVersion)
class DataVersionAdmin(admin.ModelAdmin[DataVersion]):
    list_display = ("id", "source", "description", "rows_affected", "created_at")
    list_filter = ("source",)
    search_fields = ("description",)
    readonly_fields = ("source", "description", "rows_affected", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:  # versions are written by generation/import only
        return False
