"""All /api/v1/ routes, collected from each app's ``api`` package."""

from django.urls import path

import config.converters  # noqa: F401 (registers <code:...>: a code or a 404)
from feedback.api import paper as paper_views
from feedback.api import petitions as petition_views
from feedback.api import review as review_views
from feedback.api import views as feedback_views
from results.api import rounds as rounds_views
from results.api.urls import urlpatterns as results_urlpatterns
from scoring.api import views as scoring_views
from surveys.api import views as survey_views
from surveys.api import xlsform as xlsform_views
from webhooks import api as webhook_views

# (path, view, name) of every route outside the results reads.
ROUTES = (
    ("", survey_views.ApiRootView, "root"),
    ("me/", survey_views.MeView, "me"),
    ("rounds/", rounds_views.RoundListView, "rounds"),
    (
        "rounds/<code:code>/questionnaire/",
        survey_views.RoundQuestionnaireView,
        "round-questionnaire",
    ),
    ("questionnaires/xlsform/", xlsform_views.XlsformImportView, "xlsform-import"),
    (
        "questionnaires/<code:code>/versions/<int:number>/xlsform.xlsx",
        xlsform_views.VersionXlsformView,
        "version-xlsform",
    ),
    ("responses/", feedback_views.ResponseCreateView, "responses"),
    ("responses/<str:receipt>/review/", review_views.ResponseReviewView, "response-review"),
    ("paper-imports/", paper_views.PaperImportCreateView, "paper-imports"),
    ("paper-imports/<int:pk>/", paper_views.PaperImportDetailView, "paper-import"),
    ("rounds/<code:code>/recompute/", scoring_views.RecomputeView, "round-recompute"),
    ("runs/<int:pk>/", scoring_views.RunDetailView, "run"),
    # Petitions.
    ("petition-categories/", petition_views.PetitionCategoryListView, "petition-categories"),
    ("petitions/", petition_views.PetitionListCreateView, "petitions"),
    ("petitions/<int:pk>/", petition_views.PetitionDetailView, "petition"),
    (
        "petitions/<int:pk>/transitions/",
        petition_views.PetitionTransitionView,
        "petition-transitions",
    ),
    ("petitions/track/<str:code>/", petition_views.PetitionTrackView, "petition-track"),
    (
        "petitions/track/<str:code>/rating/",
        petition_views.PetitionRatingView,
        "petition-rating",
    ),
    # Webhook subscriptions.
    ("webhooks/", webhook_views.SubscriptionListView, "webhooks"),
    ("webhooks/<int:pk>/", webhook_views.SubscriptionDetailView, "webhook"),
    ("webhooks/<int:pk>/test/", webhook_views.SubscriptionTestView, "webhook-test"),
    ("webhooks/<int:pk>/deliveries/", webhook_views.DeliveryListView, "webhook-deliveries"),
)

# The results reads first: they are most of the traffic, and Django tries the patterns in
# order (no two patterns here match the same path, so the order changes nothing else).
urlpatterns = [
    *results_urlpatterns,
    *(path(route, view.as_view(), name=name) for route, view, name in ROUTES),
]
