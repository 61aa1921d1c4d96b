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
