from django.apps import AppConfig


class BreakersConfig(AppConfig):
    name = "breakers"
    verbose_name = "Breakers"

    def ready(self) -> None:
        # controlplane imports no app: the app hands its figures to the Overview instead.
        from breakers import overview
        from controlplane.overview import register_overview_provider, register_section_provider

        register_overview_provider("breakers", overview.COLUMNS, overview.overview_cells, order=20)
        register_section_provider("breakers", overview.service_sections)
