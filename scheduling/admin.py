from django.contrib import admin

from scheduling.models import OptimizationJob, Schedule, ScheduleEntry


@admin.register(OptimizationJob)
class OptimizationJobAdmin(admin.ModelAdmin[OptimizationJob]):
    list_display = ("id", "channel", "status", "progress_generation", "progress_max", "created_by", "created_at")
    list_filter = ("status", "channel")
    readonly_fields = ("params", "result", "error", "started_at", "finished_at")


class ScheduleEntryInline(admin.TabularInline[ScheduleEntry, Schedule]):
    model = ScheduleEntry
    extra = 0
    raw_id_fields = ("program",)


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin[Schedule]):
    list_display = ("id", "name", "channel", "created_by", "created_at")
    list_filter = ("channel",)
    inlines = [ScheduleEntryInline]
