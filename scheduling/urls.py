from django.urls import URLPattern, URLResolver, path

from scheduling import apis

urlpatterns: list[URLPattern | URLResolver] = [
    path("schedules/optimize", apis.OptimizationJobCreateApi.as_view(), name="schedule-optimize"),
    path("schedules/jobs/<int:job_id>", apis.OptimizationJobDetailApi.as_view(), name="schedule-job"),
    path("schedules/jobs/<int:job_id>/cancel", apis.OptimizationJobCancelApi.as_view(), name="schedule-job-cancel"),
    path("schedules/jobs/<int:job_id>/save", apis.ScheduleSaveApi.as_view(), name="schedule-job-save"),
]
