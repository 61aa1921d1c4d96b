"""Schemathesis fuzzes every operation in /api/schema/ as every role, with every check.

`--checks all` in Python: no 5xx, every status code, content type, header and body as the
schema documents it, invalid input refused, valid input accepted, auth enforced, undeclared
methods answered 405. Each generated case is sent twice: as generated, and again with its path
parameters pointing at rows that exist, so bodies and deletes reach real objects rather than
stopping at a 404. Bounded (CONTROLPLANE_FUZZ_EXAMPLES per operation and role, 3 by default,
besides the coverage phase's boundary cases) so `make test` stays fast; `make fuzz` asks for more.
"""

from __future__ import annotations

import os
import uuid

import hypothesis
import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from controlplane.models import ApiToken, AuditEntry, Service
from controlplane.roles import Role, grant_role
from controlplane.services import create_service
from controlplane.tokens import issue_token

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("CONTROLPLANE_FUZZ_EXAMPLES", "3"))

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
# Valid input may still name a row that does not exist (a service slug, a change id), which
# the API refuses with 400 naming the field: a schema cannot say which slugs exist.
schema.config.checks.positive_data_acceptance.expected_statuses = [
    *schema.config.checks.positive_data_acceptance.expected_statuses,
    "400",
]


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    # Requests run in-process inside the test's transaction. Like Django's test client, keep
    # the request signals from closing that connection between requests.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


class Targets:
    """A user of one role with a usable token (a fuzzed DELETE /tokens/{id} may revoke the
    one we send, so it is reissued), and rows for path parameters to point at, recreated when
    a fuzzed DELETE removed them."""

    def __init__(self, role: Role):
        # No password: hashing one per operation would cost more than the fuzzing.
        self.user = get_user_model().objects.create_user(username=f"fuzz-{role.name.lower()}")
        grant_role(self.user, role)
        self.owner = get_user_model().objects.create_user(username="fuzz-owner")
        grant_role(self.owner, Role.ADMIN)
        issued = issue_token(self.user, name="fuzz-auth")
        self.token, self.secret = issued.token, issued.secret

    def headers(self) -> dict[str, str]:
        self.token.refresh_from_db()
        if self.token.revoked_at is not None:
            issued = issue_token(self.user, name=f"fuzz-auth-{uuid.uuid4().hex[:8]}")
            self.token, self.secret = issued.token, issued.secret
        return {"Authorization": f"Bearer {self.secret}"}

    def existing(self, path: str) -> dict[str, str] | None:
        if path.startswith("/api/v1/services/"):
            service = Service.objects.filter(slug="fuzz-target").first() or create_service(
                actor=self.owner, slug="fuzz-target", name="Fuzz target", team="qa"
            )
            return {"slug": service.slug}
        if path.startswith("/api/v1/tokens/"):
            token = ApiToken.objects.filter(user=self.user, name="fuzz-target").first()
            return {"id": str((token or issue_token(self.user, name="fuzz-target").token).pk)}
        if path.startswith("/api/v1/audit/"):
            return {"id": str(AuditEntry.objects.values_list("pk", flat=True)[0])}
        return None  # an operation of a later app: fuzzed as generated only


ROLES = [Role.VIEWER, Role.OPERATOR, Role.APPROVER, Role.ADMIN]


@pytest.fixture(params=ROLES, ids=[r.name.lower() for r in ROLES])
def targets(request, db) -> Targets:
    return Targets(request.param)


def sendable(case) -> None:
    if case.headers:
        # gunicorn, our only web server, drops header names holding "_" (its header_map=drop:
        # `Content_Length` would otherwise land in the environ as HTTP_CONTENT_LENGTH and pose
        # as Content-Length). The in-process WSGI transport does not, so drop them here too.
        case.headers = {k: v for k, v in case.headers.items() if "_" not in k}


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The fixtures are per test, not per example, on purpose: examples share the database.
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.filter_too_much,
    ],
)
def test_every_answer_matches_the_schema(case, targets):
    sendable(case)
    case.call_and_validate(headers=targets.headers())
    existing = targets.existing(case.path) if case.path_parameters else None
    if existing:
        case.path_parameters = existing
        case.call_and_validate(headers=targets.headers())
