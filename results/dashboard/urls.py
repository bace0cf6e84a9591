"""Routes of the public dashboard, mounted under /results/."""

from django.urls import URLPattern, path

from results.dashboard import views

app_name = "dashboard"
urlpatterns: list[URLPattern] = [
    path("", views.index, name="index"),
    path("units/<str:unit_code>/", views.unit_latest, name="unit-latest"),
    path("<str:round_code>/", views.round_ranking, name="round"),
    path("<str:round_code>/units/<str:unit_code>/", views.unit_results, name="unit"),
    path(
        "<str:round_code>/units/<str:unit_code>/diagnosis/",
        views.unit_diagnosis,
        name="diagnosis",
    ),
    path(
        "<str:round_code>/units/<str:unit_code>/agencies/",
        views.unit_agencies,
        name="agencies",
    ),
]
