"""Forms of the pages. They validate input; the services they feed do the work."""

from __future__ import annotations

from typing import Any, TypedDict

from django import forms
from django.utils import timezone

from bms.jsontypes import JSONObject
from programs.models import TARGETS, Channel, Genre

TARGET_CHOICES = [(t, t.capitalize()) for t in TARGETS]


def channel_choices() -> list[tuple[str, str]]:
    return [(c.code, c.name) for c in Channel.objects.only("code", "name")]


def set_choices(form: forms.Form, name: str, choices: list[tuple[str, str]]) -> None:
    """Choices known only at request time (the channels in the database)."""
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices


class ProgramFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    channel = forms.ChoiceField(required=False, label="Channel")
    genre = forms.ChoiceField(required=False, choices=[("", "All genres"), *Genre.choices], label="Genre")
    ordering = forms.ChoiceField(
        required=False,
        label="Sort by",
        choices=[
            ("", "Title"),
            ("external_id", "ID"),
            ("-avg_audience", "Audience (high first)"),
            ("-avg_rating", "Rating (high first)"),
        ],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        channels = channel_choices()
        set_choices(self, "channel", [("", "All channels"), *channels])


class SlotFeatures(TypedDict):
    """The slot a page prediction is for, as ``predictions.predict`` reads its features."""

    start: str  # ISO 8601, aware
    channel: str
    is_premiere: bool
    is_live: bool


class PredictForm(forms.Form):
    target = forms.ChoiceField(choices=[*TARGET_CHOICES, ("all", "All four")], initial="all")
    start = forms.DateTimeField(
        label="Slot start",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    channel = forms.ChoiceField(label="Channel")
    is_premiere = forms.BooleanField(required=False, label="Premiere")
    is_live = forms.BooleanField(required=False, label="Live")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self, "channel", channel_choices())

    def features(self) -> SlotFeatures:
        start = self.cleaned_data["start"]
        if timezone.is_naive(start):
            start = timezone.make_aware(start)
        return {
            "start": start.isoformat(),
            "channel": self.cleaned_data["channel"],
            "is_premiere": self.cleaned_data["is_premiere"],
            "is_live": self.cleaned_data["is_live"],
        }


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, min_length=3, widget=forms.Textarea(attrs={"rows": 3}))
    confirm = forms.BooleanField(label="I confirm this change to production")


class PromoteForm(ReasonForm):
    force = forms.BooleanField(
        required=False,
        label="Force: promote even if it does not beat production or the best baseline (recorded in the ledger)",
    )


class TrainingForm(forms.Form):
    targets = forms.MultipleChoiceField(choices=TARGET_CHOICES, required=False, widget=forms.CheckboxSelectMultiple)


class ScheduleForm(forms.Form):
    """The optimiser's main inputs. The page validates them again with the API's own input serializer."""

    channel = forms.ChoiceField(label="Channel")
    date = forms.DateField(label="Date", widget=forms.DateInput(attrs={"type": "date"}))
    daypart = forms.ChoiceField(label="Daypart", required=False)
    slot_minutes = forms.TypedChoiceField(
        label="Start grid", choices=[(30, "30 min"), (60, "60 min")], coerce=int, initial=30
    )
    max_consecutive_genre = forms.IntegerField(
        label="Max same genre in a row", min_value=0, max_value=48, initial=2, help_text="0 = no limit"
    )
    min_genres_per_daypart = forms.IntegerField(label="Min genres per daypart", min_value=0, max_value=12, initial=0)
    max_per_day = forms.IntegerField(label="Max airings per program a day", min_value=1, max_value=48, initial=2)
    weight_revenue = forms.FloatField(label="Revenue weight", min_value=0, initial=1.0)
    weight_audience = forms.FloatField(label="Reach weight", min_value=0, initial=0.5)
    weight_balance = forms.FloatField(label="Genre balance weight", min_value=0, initial=1.0)
    time_budget = forms.FloatField(label="Time budget (s)", min_value=0.1, max_value=60, initial=5)
    top_k = forms.IntegerField(label="Alternatives", min_value=1, max_value=10, initial=3)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from programs.calendar import DAYPART_NAMES

        set_choices(self, "channel", channel_choices())
        set_choices(self, "daypart", [("", "Whole broadcast day"), *[(d, d.replace("_", " ")) for d in DAYPART_NAMES]])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        weights = [data.get("weight_revenue"), data.get("weight_audience"), data.get("weight_balance")]
        if all(w is not None for w in weights) and sum(w for w in weights if w is not None) <= 0:
            raise forms.ValidationError("At least one objective weight must be above zero.")
        return data

    def payload(self) -> JSONObject:
        """The request body POST /api/v1/schedules/optimize would receive for these values."""
        data = self.cleaned_data
        body: JSONObject = {
            "channel": data["channel"],
            "date": data["date"].isoformat(),
            "slot_minutes": data["slot_minutes"],
            "max_consecutive_genre": data["max_consecutive_genre"],
            "min_genres_per_daypart": data["min_genres_per_daypart"],
            "max_per_day": data["max_per_day"],
            "weights": {
                "revenue": data["weight_revenue"],
                "audience": data["weight_audience"],
                "balance": data["weight_balance"],
            },
            "time_budget": data["time_budget"],
            "top_k": data["top_k"],
        }
        if data.get("daypart"):
            body["daypart"] = data["daypart"]
        return body
