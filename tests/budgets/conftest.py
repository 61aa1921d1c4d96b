"""Budgets test helpers: services and SLOs built through the verb functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from budgets import slos
from controlplane.services import create_service

NOW = datetime(2025, 3, 14, 12, 30, tzinfo=UTC)


def make_service(actor, slug: str, tier: str = "tier-2"):
    return create_service(actor=actor.user, slug=slug, name=slug.title(), team="t", tier=tier)


def make_slo(actor, service, name: str = "delivery", **fields):
    defaults = {"sli": "events", "target": "0.999", "window": "rolling:30d"}
    return slos.create_slo(actor=actor.user, service=service, name=name, **{**defaults, **fields})


def logged_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


@pytest.fixture
def shop(operator):
    """A tier-1 service with one events SLO at 99.9 % over 30 days."""
    service = make_service(operator, "shop", tier="tier-1")
    return service, make_slo(operator, service)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The cast's passwords are hashed per test; a cheap hasher keeps this suite quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
