from django.conf import settings
from django.urls import URLPattern, URLResolver, path

from predictions.apis import BenchEchoApi, PredictApi, PredictBatchApi

urlpatterns: list[URLPattern | URLResolver] = [
    path("predict", PredictApi.as_view(), name="predict"),
    path("predict/batch", PredictBatchApi.as_view(), name="predict-batch"),
]
if settings.BENCH_ENDPOINTS:
    urlpatterns.append(path("bench/echo", BenchEchoApi.as_view(), name="bench-echo"))
