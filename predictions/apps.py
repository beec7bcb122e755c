from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "predictions"

    def ready(self) -> None:
        # A promotion/rollback in this process is seen by the next request at once; other processes
        # notice it through registry_generation() within PREDICTOR_GENERATION_CHECK_MS.
        from predictions.ab_tests import ab_tests_score_on_import
        from predictions.predictor import invalidate_predictor
        from programs.services import DATA_CHANGE_HOOKS
        from registry.services import REGISTRY_CHANGE_HOOKS

        if invalidate_predictor not in REGISTRY_CHANGE_HOOKS:
            REGISTRY_CHANGE_HOOKS.append(invalidate_predictor)
        # Imported airings bring actual values: score the running A/B tests on them.
        if ab_tests_score_on_import not in DATA_CHANGE_HOOKS:
            DATA_CHANGE_HOOKS.append(ab_tests_score_on_import)
