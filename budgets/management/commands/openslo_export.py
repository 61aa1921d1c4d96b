from django.core.management.base import BaseCommand

from budgets import openslo


class Command(BaseCommand):
    help = "Export services and their SLOs as OpenSLO v1 YAML on standard output."

    def add_arguments(self, parser):
        parser.add_argument(
            "--service", action="append", default=[], help="Only this service (repeatable)."
        )

    def handle(self, *args, service, **options):
        self.stdout.write(openslo.export_documents(service or None), ending="")
