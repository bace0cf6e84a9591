"""Public pages where citizens answer (mounted at the site root)."""

from django.urls import path

from feedback import preview, web
from feedback.petitions import web as petitions

app_name = "feedback"
urlpatterns = [
    path("rounds/<str:code>/", web.round_start, name="round"),
    path("i/<str:token>/", web.invitation_start, name="invitation"),
    path("d/<str:token>/", web.draft_step, name="draft"),
    path("d/<str:token>/saved/", web.draft_saved, name="draft_saved"),
    path("thanks/<str:receipt>/", web.thanks, name="thanks"),
    # Staff only: a version as citizens see it, stored nowhere (linked from the surveys admin).
    path("preview/versions/<int:version_id>/", preview.version_preview, name="version_preview"),
    path("petitions/new/", petitions.petition_new, name="petition_new"),
    path("petitions/track/", petitions.petition_lookup, name="petition_lookup"),
    path("petitions/track/<str:code>/", petitions.petition_track, name="petition_track"),
]
