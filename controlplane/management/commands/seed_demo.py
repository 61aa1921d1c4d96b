from django.core.management.base import BaseCommand

from controlplane import demo


class Command(BaseCommand):
    help = (
        "Create the demo admin and approver, the role groups, an API token and demo data "
        "(safe to run again) and print the logins."
    )

    def handle(self, *args, **options):
        creds = demo.seed()
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"  Demo admin:  username {creds.username}  password {creds.password}",
                    f"  Demo approver: username {creds.approver_username}  "
                    f"password {creds.approver_password}",
                    "               (approves the admin's requests on /changes/)",
                    f"  Demo token:  {creds.token}",
                    "               (curl -H 'Authorization: Bearer <token>' .../api/v1/services)",
                    "",
                ]
            )
        )
