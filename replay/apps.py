from django.apps import AppConfig

# A live replay run is marked when it starts; a dry run changes nothing a chart shows.
MARKED_MODES = ("live",)


def _chart_markers(service_ids, start, end):
    """Redrives and live replay runs for the SLO charts (budgets may not import replay):
    (service id, or None for a run over every service, moment, kind, label)."""
    from controlplane.models import AuditEntry, Service
    from replay.models import ReplayRun

    slugs = dict(Service.objects.filter(pk__in=service_ids).values_list("slug", "pk"))
    out = []
    redrives = AuditEntry.objects.filter(
        action="dead_letters.redrive", at__gte=start, at__lt=end
    ).values_list("at", "after", "actor_label")
    for at, after, actor in redrives[:500]:
        after = after or {}
        label = f"{after.get('count', 0)} dead letters redriven by {actor}"
        for slug in after.get("services", []):
            if slug in slugs:
                out.append((slugs[slug], at, "redrive", label))
    runs = ReplayRun.objects.filter(
        mode__in=MARKED_MODES, started_at__gte=start, started_at__lt=end
    ).values_list("pk", "started_at", "snapshot__service_id", "created_by")
    for pk, at, service_id, actor in runs[:500]:
        out.append((service_id, at, "replay", f"replay run {pk} started by {actor}"))
    return out


class ReplayConfig(AppConfig):
    name = "replay"
    verbose_name = "Replay"

    def ready(self) -> None:
        # controlplane imports no app: the app hands its figures to the Overview instead.
        from controlplane.overview import register_overview_provider, register_section_provider
        from replay import overview

        register_overview_provider("replay", overview.COLUMNS, overview.overview_cells, order=30)
        register_section_provider("replay", overview.service_sections)

        from budgets.markers import register_marker_source

        register_marker_source(_chart_markers)
