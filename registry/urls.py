from django.urls import URLPattern, URLResolver, path

from registry.apis import (
    BestModelApi,
    ModelRollbackApi,
    ModelVersionListApi,
    ModelVersionPromoteApi,
    ProductionModelsApi,
    TrainingRunCreateApi,
    TrainingRunDetailApi,
)

urlpatterns: list[URLPattern | URLResolver] = [
    path("models", ModelVersionListApi.as_view(), name="model-list"),
    path("models/production", ProductionModelsApi.as_view(), name="model-production"),
    path("models/<int:version_id>/promote", ModelVersionPromoteApi.as_view(), name="model-promote"),
    path("models/<str:target>/best", BestModelApi.as_view(), name="model-best"),
    path("models/<str:target>/rollback", ModelRollbackApi.as_view(), name="model-rollback"),
    path("training-runs", TrainingRunCreateApi.as_view(), name="training-run-create"),
    path("training-runs/<int:run_id>", TrainingRunDetailApi.as_view(), name="training-run-detail"),
]
