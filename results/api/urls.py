"""Routes of the results API, mounted under /api/v1/ by ``config.api_router``."""

from django.urls import URLPattern, path

import config.converters  # noqa: F401 (registers <code:...>)
from results.api import agencies, diagnosis, exports, views

urlpatterns: list[URLPattern] = [
    path("units/", views.UnitListView.as_view(), name="units"),
    path("units/<code:code>/trend/", views.UnitTrendView.as_view(), name="unit-trend"),
    path("indicators/", views.IndicatorTreeView.as_view(), name="indicators"),
    path("scores/", views.ScoreListView.as_view(), name="scores"),
    path("rankings/", views.RankingView.as_view(), name="rankings"),
    path("runs/", views.RunListView.as_view(), name="runs"),
    path(
        "rounds/<code:code>/units/<code:unit>/diagnosis/",
        diagnosis.DiagnosisView.as_view(),
        name="unit-diagnosis",
    ),
    path(
        "rounds/<code:code>/units/<code:unit>/diagnosis.pdf",
        diagnosis.DiagnosisPdfView.as_view(),
        name="unit-diagnosis-pdf",
    ),
    path(
        "rounds/<code:code>/units/<code:unit>/agencies/",
        agencies.AgencyResultsView.as_view(),
        name="unit-agencies",
    ),
    path("rounds/<code:code>/scores.csv", exports.ScoreCsvView.as_view(), name="scores-csv"),
    path("rounds/<code:code>/scores.xlsx", exports.ScoreXlsxView.as_view(), name="scores-xlsx"),
    path(
        "rounds/<code:code>/responses.csv",
        exports.ResponseCsvView.as_view(),
        name="responses-csv",
    ),
    path(
        "rounds/<code:code>/responses.xlsx",
        exports.ResponseXlsxView.as_view(),
        name="responses-xlsx",
    ),
    *(
        path(f"rounds/<code:code>/scores.{kind}", view.as_view(), name=f"scores-{kind}")
        for kind, view in (
            ("sav", exports.ScoreSavView),
            ("dta", exports.ScoreDtaView),
            ("parquet", exports.ScoreParquetView),
        )
    ),
    *(
        path(f"rounds/<code:code>/responses.{kind}", view.as_view(), name=f"responses-{kind}")
        for kind, view in (
            ("sav", exports.ResponseSavView),
            ("dta", exports.ResponseDtaView),
            ("parquet", exports.ResponseParquetView),
        )
    ),
    path(
        "questionnaires/<code:code>/responses.csv",
        exports.SeriesResponseCsvView.as_view(),
        name="series-responses-csv",
    ),
    path(
        "rounds/<code:code>/codebook.csv",
        exports.CodebookCsvView.as_view(),
        name="codebook-csv",
    ),
]
