"""Optimisation jobs and saved schedules."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OptimizationJob(models.Model):
    """One GA run: QUEUED -> RUNNING -> SUCCEEDED / FAILED, or CANCELLED from QUEUED or RUNNING."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="optimization_jobs"
    )
    channel = models.ForeignKey("programs.Channel", on_delete=models.CASCADE, related_name="optimization_jobs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    params = models.JSONField(default=dict, help_text="The validated request: slots, candidates, constraints, GA.")
    progress_generation = models.PositiveIntegerField(default=0)
    progress_max = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The task that claimed the job; a redelivery of that message (same task id) may run it again.
    claimed_by = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last progress written by its worker.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.status})"


class Schedule(models.Model):
    """A proposal an analyst saved from a job's result."""

    name = models.CharField(max_length=200)
    channel = models.ForeignKey("programs.Channel", on_delete=models.CASCADE, related_name="schedules")
    job = models.ForeignKey(OptimizationJob, on_delete=models.SET_NULL, null=True, related_name="schedules")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="schedules"
    )
    totals = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class ScheduleEntry(models.Model):
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="entries")
    position = models.PositiveIntegerField()
    program = models.ForeignKey("programs.Program", on_delete=models.CASCADE, related_name="schedule_entries")
    start = models.DateTimeField()
    length_minutes = models.PositiveSmallIntegerField()
    predicted_revenue = models.FloatField(null=True, blank=True)
    predicted_audience = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["schedule", "position"]
        constraints = [models.UniqueConstraint(fields=["schedule", "position"], name="schedule_entry_position")]

    def __str__(self) -> str:
        return f"{self.schedule_id}#{self.position}"
