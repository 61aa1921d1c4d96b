from django.apps import AppConfig


class ReplayConfig(AppConfig):
    name = "replay"
    verbose_name = "Replay"

    def ready(self) -> None:
        # controlplane imports no app: the app hands its figures to the Overview instead.
        from controlplane.overview import register_overview_provider, register_section_provider
        from replay import overview

        register_overview_provider("replay", overview.COLUMNS, overview.overview_cells, order=30)
        register_section_provider("replay", overview.service_sections)
