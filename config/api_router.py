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

# The results reads first: they are most of the traffic, and Django tries the patterns in
# order (no two patterns here match the same path, so the order changes nothing else).
urlpatterns = [
    *results_urlpatterns,
    path("", survey_views.ApiRootView.as_view(), name="root"),
    path("me/", survey_views.MeView.as_view(), name="me"),
    path("rounds/", rounds_views.RoundListView.as_view(), name="rounds"),
    path(
        "rounds/<code:code>/questionnaire/",
        survey_views.RoundQuestionnaireView.as_view(),
        name="round-questionnaire",
    ),
    path(
        "questionnaires/xlsform/", xlsform_views.XlsformImportView.as_view(), name="xlsform-import"
    ),
    path(
        "questionnaires/<code:code>/versions/<int:number>/xlsform.xlsx",
        xlsform_views.VersionXlsformView.as_view(),
        name="version-xlsform",
    ),
    path("responses/", feedback_views.ResponseCreateView.as_view(), name="responses"),
    path(
        "responses/<str:receipt>/review/",
        review_views.ResponseReviewView.as_view(),
        name="response-review",
    ),
    path("paper-imports/", paper_views.PaperImportCreateView.as_view(), name="paper-imports"),
    path(
        "paper-imports/<int:pk>/", paper_views.PaperImportDetailView.as_view(), name="paper-import"
    ),
    path(
        "rounds/<code:code>/recompute/",
        scoring_views.RecomputeView.as_view(),
        name="round-recompute",
    ),
    path("runs/<int:pk>/", scoring_views.RunDetailView.as_view(), name="run"),
    # Petitions.
    path(
        "petition-categories/",
        petition_views.PetitionCategoryListView.as_view(),
        name="petition-categories",
    ),
    path("petitions/", petition_views.PetitionListCreateView.as_view(), name="petitions"),
    path("petitions/<int:pk>/", petition_views.PetitionDetailView.as_view(), name="petition"),
    path(
        "petitions/<int:pk>/transitions/",
        petition_views.PetitionTransitionView.as_view(),
        name="petition-transitions",
    ),
    path(
        "petitions/track/<str:code>/",
        petition_views.PetitionTrackView.as_view(),
        name="petition-track",
    ),
    path(
        "petitions/track/<str:code>/rating/",
        petition_views.PetitionRatingView.as_view(),
        name="petition-rating",
    ),
    # Webhook subscriptions.
    path("webhooks/", webhook_views.SubscriptionListView.as_view(), name="webhooks"),
    path("webhooks/<int:pk>/", webhook_views.SubscriptionDetailView.as_view(), name="webhook"),
    path(
        "webhooks/<int:pk>/test/", webhook_views.SubscriptionTestView.as_view(), name="webhook-test"
    ),
    path(
        "webhooks/<int:pk>/deliveries/",
        webhook_views.DeliveryListView.as_view(),
        name="webhook-deliveries",
    ),
]
