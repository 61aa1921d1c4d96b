"""The operator verbs on breakers own their rules (every door calls them), and the breaker's
state has one vocabulary, the engine's."""

from __future__ import annotations

import pytest

from breakers import control
from breakers.engine import State
from breakers.models import CircuitBreaker
from controlplane.models import AuditEntry
from tests.conftest import make_route

pytestmark = pytest.mark.smoke  # also on the embedded default


@pytest.fixture
def breaker(checkout, operator, test_handlers) -> CircuitBreaker:
    route = make_route(checkout, operator, kind="python", target="tests.handlers.record")
    row = route.breaker
    row.dynamic_field = CircuitBreaker.Dynamic.SLOW_CALL_DURATION
    row.dynamic_query = "histogram_quantile(0.99, old)"
    row.save()
    return control.set_dynamic_value(row, 2.5, source="push", actor=operator.user)


@pytest.mark.parametrize(
    "dynamic",
    [{"dynamic_query": "histogram_quantile(0.99, new)"}, {"dynamic_field": ""}],
)
def test_changing_the_dynamic_field_or_query_clears_its_source(breaker, operator, dynamic):
    row = control.update_thresholds(breaker, {}, actor=operator.user, dynamic=dynamic)
    row.refresh_from_db()
    assert row.dynamic_source == ""


@pytest.mark.parametrize(
    "dynamic",
    [{"dynamic_query": "histogram_quantile(0.99, old)"}, {"dynamic_k": 3.0}],
)
def test_other_dynamic_changes_keep_a_pushed_source(breaker, operator, dynamic):
    row = control.update_thresholds(breaker, {}, actor=operator.user, dynamic=dynamic)
    row.refresh_from_db()
    assert row.dynamic_source == "push"


def test_update_thresholds_refuses_what_is_not_a_dynamic_setting(breaker, operator):
    with pytest.raises(ValueError, match="^dynamic_source:"):
        control.update_thresholds(breaker, {}, actor=operator.user, dynamic={"dynamic_source": ""})


def test_the_api_clears_the_source_through_the_verb(breaker, operator):
    before = AuditEntry.objects.count()
    response = operator.client().patch(
        f"/api/v1/breakers/{breaker.route.name}",
        {"dynamic_query": "rate(x[5m])"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    breaker.refresh_from_db()
    assert (breaker.dynamic_query, breaker.dynamic_source) == ("rate(x[5m])", "")
    assert AuditEntry.objects.count() == before + 1


def test_stored_states_are_the_engine_states():
    assert CircuitBreaker.State.values == [s.slug for s in State]
    assert set(CircuitBreaker.Forced.values) <= set(CircuitBreaker.State.values)
    assert CircuitBreaker._meta.get_field("state").choices == CircuitBreaker.State.choices
    assert set(control.MODES) == {*CircuitBreaker.Forced.values, "automatic"}
