"""Pages of the breakers app."""

from django.urls import path

from breakers import views

app_name = "breakers"
urlpatterns = [
    path("breakers/", views.board, name="board"),
    path("breakers/<slug:name>/", views.detail, name="detail"),
    path("breakers/<slug:name>/force", views.force, name="force"),
    path("breakers/<slug:name>/thresholds", views.thresholds, name="thresholds"),
    path("breakers/<slug:name>/replay-fallback", views.replay_fallback, name="replay-fallback"),
    path("routes/", views.route_list, name="routes"),
    path("routes/<slug:name>/toggle", views.route_toggle, name="route-toggle"),
    path("schemas/", views.schema_list, name="schemas"),
    path("schemas/try", views.schema_try, name="schema-try"),
    path("schemas/<int:pk>/", views.schema_edit, name="schema-edit"),
    path("schemas/<int:pk>/delete", views.schema_delete, name="schema-delete"),
    path("nodes/", views.node_list, name="nodes"),
    path("demo/", views.demo, name="demo"),
    path("demo/downstream/<slug:name>", views.demo_downstream, name="demo-downstream"),
]
