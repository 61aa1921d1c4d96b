"""Schemathesis fuzzes every operation in /api/schema/ as every role, with every check.

`--checks all` in Python: no 5xx, every status code, content type, header and body as the
schema documents it, invalid input refused, valid input accepted, auth enforced, undeclared
methods answered 405. Each generated case is sent twice: as generated, and again with its path
parameters pointing at rows that exist, so bodies and deletes reach real objects rather than
stopping at a 404. Bounded so `make test` stays fast: CONTROLPLANE_FUZZ_EXAMPLES per operation
and role (3 by default; `make fuzz` asks for many more), and the coverage phase's boundary cases
as the admin only.
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


def load_schema(*, coverage: bool):
    loaded = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    checks = loaded.config.checks
    # Valid input may still name a row that does not exist (a service slug, a change id), which
    # the API refuses with 400 naming the field: a schema cannot say which slugs exist.
    checks.positive_data_acceptance.expected_statuses = [
        *checks.positive_data_acceptance.expected_statuses,
        "400",
    ]
    loaded.config.phases.coverage.enabled = coverage
    return loaded


# The coverage phase (boundary values, every missing field, undeclared methods) is the costly
# part and does not depend on the role once the role may act: it runs as the admin, who may do
# everything. Every role runs the fuzzing phase with all checks, so role-dependent answers
# (403s, fields viewers do not get) are checked against the schema too.
schema = load_schema(coverage=True)
fuzz_only = load_schema(coverage=False)


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
        if path.startswith("/api/v1/schemas/"):
            from breakers.models import EventSchema
            from breakers.schemas import create_schema

            row = EventSchema.objects.first()
            if row is None:
                service = Service.objects.filter(slug="fuzz-target").first() or create_service(
                    actor=self.owner, slug="fuzz-target", name="Fuzz target", team="qa"
                )
                row = create_schema(
                    actor=self.owner,
                    service=service,
                    event_type="fuzz.created",
                    fields={"n": {"type": "integer", "default": 1}},
                )
            return {"id": str(row.pk)}
        if path.startswith("/api/v1/audit/"):
            return {"id": str(AuditEntry.objects.values_list("pk", flat=True)[0])}
        return None  # an operation of a later app: fuzzed as generated only


OTHER_ROLES = [Role.VIEWER, Role.OPERATOR, Role.APPROVER]


@pytest.fixture
def admin_targets(db) -> Targets:
    return Targets(Role.ADMIN)


@pytest.fixture(params=OTHER_ROLES, ids=[r.name.lower() for r in OTHER_ROLES])
def role_targets(request, db) -> Targets:
    return Targets(request.param)


def sendable(case) -> None:
    if case.headers:
        # gunicorn, our only web server, drops header names holding "_" (its header_map=drop:
        # `Content_Length` would otherwise land in the environ as HTTP_CONTENT_LENGTH and pose
        # as Content-Length). The in-process WSGI transport does not, so drop them here too.
        case.headers = {k: v for k, v in case.headers.items() if "_" not in k}


def call_and_validate_everything(case, targets: Targets) -> None:
    """Every built-in check (`--checks all`), as generated and again on existing rows."""
    sendable(case)
    case.call_and_validate(headers=targets.headers())
    existing = targets.existing(case.path) if case.path_parameters else None
    if existing:
        case.path_parameters = existing
        case.call_and_validate(headers=targets.headers())


SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The fixtures are per test, not per example, on purpose: examples share the database.
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.filter_too_much,
    ],
)


@schema.parametrize()
@SETTINGS
def test_every_answer_to_the_admin_matches_the_schema(case, admin_targets):
    call_and_validate_everything(case, admin_targets)


@fuzz_only.parametrize()
@SETTINGS
def test_every_answer_to_each_other_role_matches_the_schema(case, role_targets):
    call_and_validate_everything(case, role_targets)
