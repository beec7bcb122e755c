from django.conf import settings
from django.urls import URLPattern, URLResolver, path

from predictions.apis import (
    ABTestDetailApi,
    ABTestListApi,
    BenchEchoApi,
    DriftReportDetailApi,
    DriftReportListApi,
    PredictApi,
    PredictBatchApi,
)

urlpatterns: list[URLPattern | URLResolver] = [
    path("predict", PredictApi.as_view(), name="predict"),
    path("predict/batch", PredictBatchApi.as_view(), name="predict-batch"),
    path("ab-tests", ABTestListApi.as_view(), name="ab-test-list"),
    path("ab-tests/<int:test_id>", ABTestDetailApi.as_view(), name="ab-test-detail"),
    path("drift-reports", DriftReportListApi.as_view(), name="drift-report-list"),
    path("drift-reports/<int:report_id>", DriftReportDetailApi.as_view(), name="drift-report-detail"),
]
if settings.BENCH_ENDPOINTS:
    urlpatterns.append(path("bench/echo", BenchEchoApi.as_view(), name="bench-echo"))
