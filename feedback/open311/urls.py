"""GeoReport v2 routes, mounted at ``/open311/v2/``; ``.json`` or ``.xml`` on each."""

from django.urls import re_path
from rest_framework.urlpatterns import format_suffix_patterns

from feedback.open311 import views

app_name = "open311"
urlpatterns = format_suffix_patterns(
    [
        re_path(r"^services$", views.ServiceList.as_view(), name="services"),
        re_path(r"^services/(?P<code>[^/]+?)$", views.ServiceDefinition.as_view(), name="service"),
        re_path(r"^requests$", views.RequestList.as_view(), name="requests"),
        re_path(r"^requests/(?P<pk>[0-9]+)$", views.RequestDetail.as_view(), name="request"),
    ],
    suffix_required=True,
    allowed=["json", "xml"],
)
