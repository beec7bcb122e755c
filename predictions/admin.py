"""Admin: A/B tests (create through the service, score, stop), prediction logs, drift reports."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from bms.errors import ApplicationError
from predictions import ab_tests
from predictions.models import ABTest, DriftReport, PredictionLog


class ABTestForm(forms.ModelForm[ABTest]):
    class Meta:
        model = ABTest
        fields = ["name", "challenger", "traffic_share", "mode", "starts_at", "ends_at"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk is None and data.get("challenger") is not None and not self.errors:
            try:
                ab_tests.ab_test_check(
                    challenger=data["challenger"],
                    traffic_share=data.get("traffic_share", 0.0),
                    mode=data.get("mode", ABTest.Mode.SPLIT),
                    starts_at=data.get("starts_at") or timezone.now(),
                    ends_at=data.get("ends_at"),
                )
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from exc
        return data


@admin.register(ABTest)
class ABTestAdmin(admin.ModelAdmin[ABTest]):
    form = ABTestForm
    list_display = [
        "name",
        "target",
        "champion",
        "challenger",
        "traffic_share",
        "mode",
        "status",
        "winner",
        "scored_at",
    ]
    list_filter = ["target", "status", "mode"]
    readonly_fields = [
        "target",
        "champion",
        "status",
        "ended_at",
        "end_reason",
        "created_by",
        "created_at",
        "scored_at",
        "scoring",
    ]
    actions = ["score_now", "stop_tests"]

    def get_readonly_fields(self, request: HttpRequest, obj: ABTest | None = None) -> list[str]:
        if obj is None:
            return ["scoring"]
        # A running test is changed by stopping it and starting another, not by editing it.
        return [*self.readonly_fields, "name", "challenger", "traffic_share", "mode", "starts_at", "ends_at"]

    def save_model(self, request: HttpRequest, obj: ABTest, form: ABTestForm, change: bool) -> None:
        if change:
            return
        # The form's clean() ran the same checks, so only a race can fail here.
        created = ab_tests.ab_test_create(
            name=obj.name,
            challenger=obj.challenger,
            traffic_share=obj.traffic_share,
            mode=obj.mode,
            starts_at=obj.starts_at,
            ends_at=obj.ends_at,
            actor=request.user,
        )
        obj.pk = created.pk
        obj.__dict__.update({k: v for k, v in created.__dict__.items() if not k.startswith("_")})

    @admin.display(description="winner")
    def winner(self, obj: ABTest) -> str:
        return str(obj.result.get("winner", "")) if obj.result else ""

    @admin.display(description="Scoring on actual values")
    def scoring(self, obj: ABTest) -> str:
        r = obj.result or {}
        if r.get("status") != "scored":
            return (
                f"Not scored yet ({r.get('status', 'never run')}; {r.get('n_predictions', 0)} predictions in "
                f"{r.get('n_requests', 0)} requests logged)."
            )
        rows = [
            (arm, r[arm]["n"], f"{r[arm]['rmse']:.4f}", f"{r[arm]['mae']:.4f}") for arm in ("champion", "challenger")
        ]
        table = format_html(
            "<table><tr><th>arm</th><th>n</th><th>RMSE</th><th>MAE</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )
        counts = format_html(
            "<p>{} predictions in {} requests logged, {} matched to actual values.</p>",
            r.get("n_predictions", 0),
            r.get("n_requests", 0),
            r.get("n_matched", 0),
        )
        table = format_html("{}{}", counts, table)
        return format_html(
            "{}<p>Paired |error| difference (challenger - champion): {} [{}, {}] at {}; winner: <b>{}</b></p>",
            table,
            f"{r['diff_mean']:.4f}",
            f"{r['diff_low']:.4f}",
            f"{r['diff_high']:.4f}",
            f"{r['level']:.0%}",
            r["winner"],
        )

    @admin.action(description="Score on actual values now")
    def score_now(self, request: HttpRequest, queryset: QuerySet[ABTest]) -> None:
        for test in queryset:
            result = ab_tests.ab_test_score(test=test)
            self.message_user(request, f"{test}: {result.get('status')} ({result.get('n_matched', 0)} matched).")

    @admin.action(description="Stop the selected tests")
    def stop_tests(self, request: HttpRequest, queryset: QuerySet[ABTest]) -> None:
        for test in queryset.filter(status=ABTest.Status.ACTIVE):
            ab_tests.ab_test_stop(test=test, reason=f"stopped by {request.user.get_username()} in the admin")
        self.message_user(request, "Stopped.")


@admin.register(PredictionLog)
class PredictionLogAdmin(admin.ModelAdmin[PredictionLog]):
    list_display = ["created_at", "target", "algorithm", "model_version", "program", "slot_start", "output"]
    list_display += ["latency_ms", "ab_test", "arm", "served"]
    list_filter = ["target", "algorithm", "arm", "served"]
    list_select_related = ["model_version", "program"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PredictionLog | None = None) -> bool:
        return False


@admin.register(DriftReport)
class DriftReportAdmin(admin.ModelAdmin[DriftReport]):
    list_display = ["created_at", "target", "flagged", "accuracy_drift", "n_recent", "n_reference", "retrain_run_id"]
    list_filter = ["target", "flagged"]
    readonly_fields = ["feature_table"]
    exclude = ["features"]

    @admin.display(description="features")
    def feature_table(self, obj: DriftReport) -> str:
        rows = [
            (name, v.get("kind"), f"{v.get('score', 0):.4f}", "FLAGGED" if v.get("flagged") else "")
            for name, v in sorted(obj.features.items())
        ]
        return format_html(
            "<table><tr><th>feature</th><th>kind</th><th>score</th><th></th></tr>{}</table><pre>{}</pre>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
            json.dumps(obj.features, indent=1)[:4000],
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: DriftReport | None = None) -> bool:
        return False
