from django.core.management.base import BaseCommand

from controlplane import demo


class Command(BaseCommand):
    help = "Create the demo admin, API token and data (safe to run again) and print the logins."

    def handle(self, *args, **options):
        creds = demo.seed()
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"  Demo admin:  username {creds.username}  password {creds.password}",
                    f"  Demo token:  {creds.token}",
                    "               (curl -H 'Authorization: Bearer <token>' .../api/v1/services)",
                    "",
                ]
            )
        )
