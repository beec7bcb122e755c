"""Pages (server-rendered). The API lives under /api/v1/; these call the same selectors/services."""

from django.urls import URLPattern, URLResolver, path

from web.views import base, chat, dashboard, models, monitoring, programs, schedule

app_name = "web"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", dashboard.DashboardPage.as_view(), name="dashboard"),
    path("login/", base.LoginView.as_view(), name="login"),
    path("logout/", base.LogoutView.as_view(), name="logout"),
    path("programs/", programs.ProgramListPage.as_view(), name="programs"),
    path("programs/<str:key>/", programs.ProgramPage.as_view(), name="program"),
    path("programs/<str:key>/predict", programs.ProgramPredictPage.as_view(), name="program-predict"),
    path("models/", models.ModelsPage.as_view(), name="models"),
    path("models/<int:pk>/promote", models.ModelPromotePage.as_view(), name="model-promote"),
    path("models/rollback/<str:target>", models.ModelRollbackPage.as_view(), name="model-rollback"),
    path("models/train", models.TrainingStartPage.as_view(), name="training-start"),
    path("models/runs/<int:pk>/", models.TrainingRunPage.as_view(), name="training-run"),
    path("models/runs/<int:pk>/status", models.TrainingRunStatusJson.as_view(), name="training-run-status"),
    path("schedule/", schedule.SchedulePage.as_view(), name="schedule"),
    path("schedule/jobs/<int:pk>/", schedule.ScheduleJobPage.as_view(), name="schedule-job"),
    path("schedule/jobs/<int:pk>/status", schedule.ScheduleJobStatusJson.as_view(), name="schedule-job-status"),
    path("schedule/jobs/<int:pk>/save", schedule.ScheduleSavePage.as_view(), name="schedule-save"),
    path("schedule/jobs/<int:pk>/export.csv", schedule.ScheduleExport.as_view(), name="schedule-export"),
    path("chat/", chat.ChatIndexPage.as_view(), name="chat"),
    path("chat/new", chat.ChatNewPage.as_view(), name="chat-new"),
    path("chat/<str:session_id>/", chat.ChatSessionPage.as_view(), name="chat-session"),
    path("monitoring/", monitoring.MonitoringPage.as_view(), name="monitoring"),
    path("monitoring/workers", monitoring.WorkerStatusJson.as_view(), name="monitoring-workers"),
]
