from django.apps import AppConfig


class BudgetsConfig(AppConfig):
    name = "budgets"
    verbose_name = "Budgets"

    def ready(self) -> None:
        # controlplane imports no app: the app hands its figures to the Overview instead.
        from budgets import overview
        from controlplane.overview import register_overview_provider, register_section_provider

        register_overview_provider("budgets", overview.COLUMNS, overview.overview_cells, order=10)
        register_section_provider("budgets", overview.service_sections)
