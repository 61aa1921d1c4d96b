"""Pages of the breakers app."""

from django.urls import path

from breakers import views

app_name = "breakers"
urlpatterns = [
    path("routes/", views.route_list, name="routes"),
    path("routes/<slug:name>/toggle", views.route_toggle, name="route-toggle"),
    path("nodes/", views.node_list, name="nodes"),
    path("demo/", views.demo, name="demo"),
    path("demo/downstream/<slug:name>", views.demo_downstream, name="demo-downstream"),
]
