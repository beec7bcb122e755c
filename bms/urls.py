from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from bms import health

handler400 = "bms.errors.handler400"
handler403 = "bms.errors.handler403"
handler404 = "bms.errors.handler404"
handler500 = "bms.errors.handler500"

api_v1 = [
    path("", include("bms.api_urls")),
    path("", include("programs.urls")),
    path("", include("registry.urls")),
    path("", include("predictions.urls")),
    path("", include("scheduling.urls")),
    path("", include("chat.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("health", health.health, name="health"),
    path("health/deep", health.health_deep, name="health-deep"),
    path("metrics", health.metrics, name="metrics"),
    path("", include("web.urls")),
]
