"""Routes of the results API, mounted under /api/v1/ by ``config.api_router``."""

from django.urls import URLPattern, path

import config.converters  # noqa: F401 (registers <code:...>)
from results.api import agencies, diagnosis, exports, views

# The documents of one unit in a round: (path after rounds/<code>/units/<unit>/, view, name).
UNIT_IN_ROUND = (
    ("diagnosis/", diagnosis.DiagnosisView, "unit-diagnosis"),
    ("diagnosis.pdf", diagnosis.DiagnosisPdfView, "unit-diagnosis-pdf"),
    ("agencies/", agencies.AgencyResultsView, "unit-agencies"),
)
# The files of a round, rounds/<code>/<what>.<format>, named <what>-<format>.
ROUND_FILES = (
    ("scores", "csv", exports.ScoreCsvView),
    ("scores", "xlsx", exports.ScoreXlsxView),
    ("responses", "csv", exports.ResponseCsvView),
    ("responses", "xlsx", exports.ResponseXlsxView),
    ("scores", "sav", exports.ScoreSavView),
    ("scores", "dta", exports.ScoreDtaView),
    ("scores", "parquet", exports.ScoreParquetView),
    ("responses", "sav", exports.ResponseSavView),
    ("responses", "dta", exports.ResponseDtaView),
    ("responses", "parquet", exports.ResponseParquetView),
    ("codebook", "csv", exports.CodebookCsvView),
)

urlpatterns: list[URLPattern] = [
    path("units/", views.UnitListView.as_view(), name="units"),
    path("units/<code:code>/trend/", views.UnitTrendView.as_view(), name="unit-trend"),
    path("indicators/", views.IndicatorTreeView.as_view(), name="indicators"),
    path("scores/", views.ScoreListView.as_view(), name="scores"),
    path("rankings/", views.RankingView.as_view(), name="rankings"),
    path("runs/", views.RunListView.as_view(), name="runs"),
    *(
        path(f"rounds/<code:code>/units/<code:unit>/{tail}", view.as_view(), name=name)
        for tail, view, name in UNIT_IN_ROUND
    ),
    *(
        path(f"rounds/<code:code>/{what}.{kind}", view.as_view(), name=f"{what}-{kind}")
        for what, kind, view in ROUND_FILES
    ),
    path(
        "questionnaires/<code:code>/responses.csv",
        exports.SeriesResponseCsvView.as_view(),
        name="series-responses-csv",
    ),
]
