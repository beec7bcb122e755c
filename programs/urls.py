from django.urls import URLPattern, URLResolver, path

from programs.apis import ExportApi, ProgramDetailApi, ProgramListApi, ProgramTrendsApi

urlpatterns: list[URLPattern | URLResolver] = [
    path("programs", ProgramListApi.as_view(), name="program-list"),
    path("programs/<str:key>", ProgramDetailApi.as_view(), name="program-detail"),
    path("programs/<str:key>/trends", ProgramTrendsApi.as_view(), name="program-trends"),
    path("export", ExportApi.as_view(), name="export"),
]
