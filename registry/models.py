"""The model registry: training runs, the model versions they produce, and the promotion history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from programs.models import TARGETS


class Target(models.TextChoices):
    RATING = "rating", "Rating"
    REVENUE = "revenue", "Revenue"
    AUDIENCE = "audience", "Audience"
    ENGAGEMENT = "engagement", "Engagement"


class Algorithm(models.TextChoices):
    RANDOM_FOREST = "random_forest", "Random forest"
    XGBOOST = "xgboost", "XGBoost"
    CATBOOST = "catboost", "CatBoost"
    GRADIENT_BOOSTING = "gradient_boosting", "Gradient boosting"
    MLP = "mlp", "MLP"
    ELASTICNET = "elasticnet", "Elastic net"


assert tuple(Target.values) == TARGETS


class TrainingRun(models.Model):
    """QUEUED -> RUNNING -> SUCCEEDED (every model trained) / PARTIAL (some) / FAILED (none, or never ran)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partial (some models failed)"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual (command)"
        API = "api", "API"
        ADMIN = "admin", "Admin"
        NIGHTLY = "nightly", "Nightly"
        DRIFT = "drift", "Drift"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    targets = models.JSONField(default=list)
    algorithms = models.JSONField(default=list)
    options = models.JSONField(default=dict, blank=True, help_text="Hyperparameter overrides, CV splits.")
    seed = models.IntegerField()
    code_version = models.CharField(max_length=64, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    data_version = models.PositiveIntegerField(default=0)
    dataset_fingerprint = models.CharField(max_length=64, blank=True)
    dataset_rows = models.PositiveIntegerField(default=0)
    dataset = models.JSONField(default=dict, blank=True, help_text="Per target: rows, fingerprint, dropped counts.")
    baselines = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            "Per target: the naive forecasts scored on the run's test part, "
            '{"program_mean": {"r2", "rmse", "mse", "mae"}, ..., "best": name}. Never promotable.'
        ),
    )
    models_total = models.PositiveSmallIntegerField(default=0)
    models_done = models.PositiveSmallIntegerField(default=0)
    models_failed = models.PositiveSmallIntegerField(default=0)
    selection = models.JSONField(default=dict, blank=True, help_text="Per target: promoted version or why not.")
    error = models.TextField(blank=True)
    # The dispatch task that claimed the run; a redelivery of that message (same task id) may resume it.
    claimed_by = models.CharField(max_length=255, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When its per-model tasks were queued.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status}, {self.models_done}/{self.models_total})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class TrainingJob(models.Model):
    """One model of a run; the unit a Celery task claims (conditional update) and executes."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="jobs")
    target = models.CharField(max_length=16, choices=Target.choices)
    algorithm = models.CharField(max_length=32, choices=Algorithm.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    claimed_by = models.CharField(max_length=64, blank=True, help_text="Task id that holds the claim.")
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    model_version = models.OneToOneField(
        "ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="job"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "target", "algorithm"], name="training_job_unique_model"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.target}/{self.algorithm} ({self.status})"


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        PRODUCTION = "production", "Production"
        ARCHIVED = "archived", "Archived"

    class ArtifactFormat(models.TextChoices):
        SKOPS = "skops", "skops (scikit-learn pipeline)"
        XGBOOST_UBJ = "xgboost-ubj", "XGBoost UBJ + skops preprocessing"
        CATBOOST_CBM = "catboost-cbm", "CatBoost cbm + skops preprocessing"

    run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="versions")
    target = models.CharField(max_length=16, choices=Target.choices)
    algorithm = models.CharField(max_length=32, choices=Algorithm.choices)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE, db_index=True)
    metrics = models.JSONField(default=dict, blank=True)
    hyperparameters = models.JSONField(default=dict, blank=True)
    feature_importance = models.JSONField(default=dict, blank=True)
    training_seconds = models.FloatField(default=0.0)
    artifact_path = models.CharField(max_length=255, help_text="Relative to ARTIFACT_ROOT.")
    artifact_format = models.CharField(max_length=16, choices=ArtifactFormat.choices)
    artifact_size = models.PositiveBigIntegerField(default=0)
    artifact_sha256 = models.CharField(max_length=64)
    dataset_fingerprint = models.CharField(max_length=64, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    seed = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["target", "algorithm", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["target", "algorithm", "version"], name="model_version_unique_number"),
            models.UniqueConstraint(
                fields=["target"], condition=Q(status="production"), name="model_version_one_production_per_target"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.target}/{self.algorithm} v{self.version} ({self.status})"

    @property
    def label(self) -> str:
        return f"{self.target}/{self.algorithm} v{self.version}"

    @property
    def r2(self) -> float | None:
        value = self.metrics.get("r2")
        return None if value is None else float(value)


class PromotionEvent(models.Model):
    """Append-only history of status changes. Never updated or deleted (admin is read-only)."""

    class Kind(models.TextChoices):
        PROMOTION = "promotion", "Promotion"
        ROLLBACK = "rollback", "Rollback"

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="events")
    target = models.CharField(max_length=16, choices=Target.choices, db_index=True)
    from_status = models.CharField(max_length=16, choices=ModelVersion.Status.choices)
    to_status = models.CharField(max_length=16, choices=ModelVersion.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="User name, or 'system' for automatic.")
    reason = models.TextField(blank=True)
    kind = models.CharField(
        max_length=16,
        choices=Kind.choices,
        default=Kind.PROMOTION,
        help_text="Which move wrote the event: rollback walks the ledger back by these.",
    )
    forced = models.BooleanField(default=False, help_text="A hand promotion forced past a failed guard.")
    details = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the move checked and did: the guard's comparison, what it was forced past, A/B tests ended.",
    )
    run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target", "to_status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.version} {self.from_status}->{self.to_status}"
