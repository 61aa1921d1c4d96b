"""`manage.py evaluate_alerts [--service SLUG]`: the burn-rate alerts evaluated now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from budgets import alerts
from controlplane.models import Service


class Command(BaseCommand):
    help = "Evaluate burn-rate alerts now (as beat does every minute) and print what changed."

    def add_arguments(self, parser):
        parser.add_argument("--service", help="Only this service's SLOs (default: every SLO).")

    def handle(self, *args, service: str | None = None, **options):
        target = None
        if service is not None:
            target = Service.objects.filter(slug=service).first()
            if target is None:
                raise CommandError(f"--service: no service {service!r}.")
        transitions = alerts.evaluate(service=target, actor="manage.py evaluate_alerts")
        changes = alerts.summary(transitions)
        for state in ("firing", "resolved"):
            for change in changes[state]:
                self.stdout.write(f"{state} slo={change['slo']} rule={change['rule']}")
        self.stdout.write(f"{len(changes['firing'])} firing, {len(changes['resolved'])} resolved.")
