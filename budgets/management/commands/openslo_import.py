from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from budgets import openslo


class Command(BaseCommand):
    help = "Import OpenSLO v1 YAML (Service, SLI, SLO documents); all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("path", help="YAML file, or - for standard input")
        parser.add_argument("--dry-run", action="store_true", help="Check without saving.")
        parser.add_argument("--actor", default="", help="Username to audit as (default: system)")

    def handle(self, *args, path, dry_run, actor, **options):
        if path == "-":
            import sys

            try:
                text = sys.stdin.read()
            except UnicodeDecodeError as exc:
                raise CommandError(f"standard input is not UTF-8 text: {exc}") from None
        else:
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read {path} as UTF-8 text: {exc}") from None
        user = None
        if actor:
            user = get_user_model().objects.filter(username=actor).first()
            if user is None:
                raise CommandError(f"no user {actor!r}")
        try:
            results = openslo.import_documents(text, actor=user or "manage.py", dry_run=dry_run)
        except openslo.OpenSLOError as exc:
            raise CommandError(str(exc)) from None
        for result in results:
            self.stdout.write(f"{result.action:9} {result.kind} {result.name}")
        if dry_run:
            self.stdout.write("dry run: nothing saved")
