"""Pages of the breakers app."""

from django.urls import path  # noqa: F401

app_name = "breakers"
urlpatterns: list = []
