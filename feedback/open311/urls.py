"""GeoReport v2 routes, mounted at ``/open311/v2/``; ``.json`` or ``.xml`` on each."""

from django.urls import re_path

from feedback.open311 import views

FMT = r"\.(?P<fmt>json|xml)$"
app_name = "open311"
urlpatterns = [
    re_path(rf"^services{FMT}", views.service_list, name="services"),
    re_path(rf"^services/(?P<code>[^/]+?){FMT}", views.service_definition, name="service"),
    re_path(rf"^requests{FMT}", views.request_list, name="requests"),
    re_path(rf"^requests/(?P<pk>[0-9]+){FMT}", views.request_detail, name="request"),
]
