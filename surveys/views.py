"""Public pages: the start page listing open rounds (each links to its page in feedback)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from surveys.selectors import open_rounds


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "surveys/home.html", {"rounds": open_rounds()})
