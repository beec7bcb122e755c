from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "predictions"

    def ready(self) -> None:
        # A promotion/rollback in this process is seen by the next request at once; other processes
        # notice it through registry_generation() within PREDICTOR_GENERATION_CHECK_MS.
        from predictions.predictor import invalidate_predictor
        from registry.services import REGISTRY_CHANGE_HOOKS

        if invalidate_predictor not in REGISTRY_CHANGE_HOOKS:
            REGISTRY_CHANGE_HOOKS.append(invalidate_predictor)
