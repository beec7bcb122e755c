from django.urls import URLPattern, URLResolver, path

from chat import apis

urlpatterns: list[URLPattern | URLResolver] = [
    path("sessions/create", apis.SessionCreateApi.as_view(), name="chat-session-create"),
    path("chat", apis.ChatApi.as_view(), name="chat"),
    path("chat/history", apis.ChatHistoryApi.as_view(), name="chat-history"),
    path("llm/cache/stats", apis.CacheStatsApi.as_view(), name="llm-cache-stats"),
    path("llm/tokens/usage", apis.TokenUsageApi.as_view(), name="llm-token-usage"),
    path("exports/<str:token>", apis.ExportDownloadApi.as_view(), name="chat-export-download"),
]
