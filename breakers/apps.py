from django.apps import AppConfig


def _report_transitions(service_ids, start, end):
    """Breaker transitions for budget reports (budgets may not import breakers)."""
    from breakers.models import BreakerTransition

    return list(
        BreakerTransition.objects.filter(
            breaker__route__service_id__in=service_ids, at__gte=start, at__lt=end
        ).values_list("breaker__route__service_id", "name", "from_state", "to_state", "at")
    )


class BreakersConfig(AppConfig):
    name = "breakers"
    verbose_name = "Breakers"

    def ready(self) -> None:
        from budgets.reports import register_breaker_source

        register_breaker_source(_report_transitions)

        # controlplane imports no app: the app hands its figures to the Overview instead.
        from breakers import overview
        from controlplane.overview import register_overview_provider, register_section_provider

        register_overview_provider("breakers", overview.COLUMNS, overview.overview_cells, order=20)
        register_section_provider("breakers", overview.service_sections)

        # Admission at ingest: replay asks through its hook (replay may not import breakers).
        from breakers.admission import admit
        from replay.ingest import set_admission

        set_admission(admit)
