"""Public pages where citizens answer (mounted at the site root)."""

from django.urls import path

from feedback import web

app_name = "feedback"
urlpatterns = [
    path("rounds/<str:code>/", web.round_start, name="round"),
    path("i/<str:token>/", web.invitation_start, name="invitation"),
    path("d/<str:token>/", web.draft_step, name="draft"),
    path("d/<str:token>/saved/", web.draft_saved, name="draft_saved"),
    path("thanks/<str:receipt>/", web.thanks, name="thanks"),
]
