"""Read-only admin for chat history (the relational store)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from chat.models import ChatMessage, ChatSession


class ChatMessageInline(admin.TabularInline[ChatMessage, ChatSession]):
    model = ChatMessage
    fields = ("created_at", "role", "content")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("created_at", "id")

    def has_add_permission(self, request: HttpRequest, obj: ChatSession | None = None) -> bool:
        return False


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin[ChatSession]):
    list_display = ("id", "owner", "title", "created_at")
    list_select_related = ("owner",)
    search_fields = ("id", "owner__username", "title")
    readonly_fields = ("id", "owner", "title", "created_at")
    inlines = [ChatMessageInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ChatSession | None = None) -> bool:
        return False
