from typing import Any

from django.db import migrations, models


def mark_rollbacks(apps: Any, schema_editor: Any) -> None:
    """Events written by a rollback before ``kind`` existed: the service wrote these reasons."""
    event = apps.get_model("registry", "PromotionEvent")
    event.objects.filter(to_status="production", reason__startswith="rollback from ").update(kind="rollback")
    event.objects.filter(to_status="archived", reason__startswith="rolled back: ").update(kind="rollback")


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0005_training_run_partial_and_resume"),
    ]

    operations = [
        migrations.AddField(
            model_name="promotionevent",
            name="forced",
            field=models.BooleanField(default=False, help_text="A hand promotion forced past a failed guard."),
        ),
        migrations.AddField(
            model_name="promotionevent",
            name="kind",
            field=models.CharField(
                choices=[("promotion", "Promotion"), ("rollback", "Rollback")],
                default="promotion",
                help_text="Which move wrote the event: rollback walks the ledger back by these.",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="promotionevent",
            name="details",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text=(
                    "What the move checked and did: the guard's comparison, what it was forced past, A/B tests ended."
                ),
            ),
        ),
        migrations.RunPython(mark_rollbacks, migrations.RunPython.noop),
    ]
