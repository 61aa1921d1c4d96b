from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from controlplane.tokens import issue_token


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="A name to recognise the token by.")
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument("--scope", action="append", default=[], help="e.g. --scope ingest")

    def handle(self, *args, username, name, expires_in_days, scope, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if user.api_tokens.filter(name=name).exists():
            raise CommandError(f"{username} already has a token named {name!r}.")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        try:
            issued = issue_token(user, name=name, expires_at=expires_at, scopes=scope)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(issued.secret)
