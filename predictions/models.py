"""A/B tests between a champion and a challenger model, the prediction log and drift reports."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ABTest(models.Model):
    """Traffic split (or shadow) between the production model of a target and a challenger version."""

    class Mode(models.TextChoices):
        SPLIT = "split", "Split: the challenger answers its share of callers"
        SHADOW = "shadow", "Shadow: the challenger is scored on live requests but never returned"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        STOPPED = "stopped", "Stopped"

    name = models.CharField(max_length=100)
    target = models.CharField(max_length=16, db_index=True)
    champion = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="+")
    challenger = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="+")
    traffic_share = models.FloatField(default=0.1, help_text="Share of callers (0-1) answered by the challenger.")
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.SPLIT)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    result = models.JSONField(default=dict, blank=True, help_text="Last scoring on actual values.")
    scored_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.TextField(
        blank=True, help_text="Why it stopped: by hand, its ends_at passed, or its target's production changed."
    )

    class Meta:
        verbose_name = "A/B test"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["target"], condition=Q(status="active"), name="predictions_one_active_abtest_per_target"
            ),
            models.CheckConstraint(
                condition=Q(traffic_share__gte=0) & Q(traffic_share__lte=1), name="predictions_abtest_share_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.target}, {self.mode})"


class PredictionLog(models.Model):
    """One model call. A request covered by an A/B test logs both arms (``served`` marks the answer)."""

    class Arm(models.TextChoices):
        NONE = "", "No test"
        CHAMPION = "champion", "Champion"
        CHALLENGER = "challenger", "Challenger"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Not indexed: no query filters on it (A/B scoring groups the rows of one test), and random UUIDs
    # made every log insert touch a random page of that index.
    request_id = models.UUIDField(default=uuid.uuid4)
    request_key = models.CharField(max_length=128, blank=True)
    target = models.CharField(max_length=16)
    model_version = models.ForeignKey(
        "registry.ModelVersion", null=True, on_delete=models.SET_NULL, related_name="prediction_logs"
    )
    algorithm = models.CharField(max_length=32)
    program = models.ForeignKey("programs.Program", null=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.ForeignKey("programs.Channel", null=True, on_delete=models.SET_NULL, related_name="+")
    slot_start = models.DateTimeField()
    inputs_digest = models.CharField(max_length=64, help_text="64-bit hash (hex) of the raw feature row.")
    output = models.FloatField()
    latency_ms = models.FloatField()
    ab_test = models.ForeignKey(ABTest, null=True, blank=True, on_delete=models.SET_NULL, related_name="logs")
    arm = models.CharField(max_length=10, choices=Arm.choices, default=Arm.NONE, blank=True)
    served = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["ab_test", "arm"]),
            models.Index(fields=["program", "slot_start"]),
            models.Index(fields=["target", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.target}={self.output:.3f} ({self.algorithm})"


class DriftReport(models.Model):
    """Recent feature distributions and errors compared with the training-period data, per target."""

    target = models.CharField(max_length=16, db_index=True)
    model_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    reference_start = models.DateTimeField()
    reference_end = models.DateTimeField()
    n_reference = models.PositiveIntegerField(default=0)
    n_recent = models.PositiveIntegerField(default=0)
    features = models.JSONField(default=dict, help_text="Per feature: kind, score (PSI or KS), flagged, ...")
    recent_rmse = models.FloatField(null=True, blank=True)
    holdout_rmse = models.FloatField(null=True, blank=True)
    accuracy_drift = models.FloatField(
        null=True, blank=True, help_text="recent RMSE / holdout RMSE - 1 (0.1 = 10% worse)."
    )
    accuracy_threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="The accuracy drift that flags, calibrated on the model's own holdout spread (see docs).",
    )
    accuracy_flagged = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    retrain_run_id = models.PositiveIntegerField(null=True, blank=True, help_text="TrainingRun started by it.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.target} drift {self.created_at:%Y-%m-%d %H:%M}{' FLAGGED' if self.flagged else ''}"
