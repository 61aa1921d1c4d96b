"""Fuzzing the OpenSLO importer: whatever the YAML, only OpenSLOError escapes (and no 500).

Documents of the spec's shapes with one value anywhere replaced by any YAML shape
(mappings, lists, scalars, huge numbers, unicode, words the importer looks for), plus
arbitrary text. Run with dry_run, so examples do not pile up SLOs. A longer campaign:
OPENSLO_FUZZ_EXAMPLES=5000 pytest tests/budgets/test_openslo_fuzz.py
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budgets import openslo
from tests.budgets.conftest import make_service
from tests.budgets.test_openslo_spec_shapes import (
    RATIO_TIMESLICES,
    THRESHOLD_TWO_WEEKS,
    TWO_OBJECTIVES_ZONED_MONTH,
    WEEKLY_LOCAL_NOON,
)

pytestmark = [pytest.mark.django_db]

SHAPES = [
    yaml.safe_load(text)
    for text in (
        THRESHOLD_TWO_WEEKS,
        RATIO_TIMESLICES,
        TWO_OBJECTIVES_ZONED_MONTH,
        WEEKLY_LOCAL_NOON,
    )
]
WORDS = [
    "openslo/v1",
    "SLO",
    "SLI",
    "Service",
    "ControlPlane",
    "latency",
    "events",
    "external",
    "Occurrences",
    "Timeslices",
    "RatioTimeslices",
    "lte",
    "gt",
    "1M",
    "1m",
    "2w",
    "1Q",
    "1Y",
    "0d",
    "99999999d",
    "UTC",
    "America/New_York",
    "../../etc/passwd",
    "Mars/Base",
    "1e400",
    "-1e400",
    "NaN",
    "2024-02-30 00:00:00",
    "2024-01-01T00:00:00+14:00",
    "\ud800",
    "\x00",
    "é" * 300,
    "a" * 70,
    "",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, -(10**30), 0, 1, 60, 7]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(WORDS),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "metadata",
            "name",
            "spec",
            "kind",
            "labels",
            "team",
            "calendar",
            "timeZone",
            "startTime",
            "duration",
            "isRolling",
            "target",
            "objectives",
            "indicator",
            "\ud800",
            "\udfff-key",
            "\x00",
        ]
    ),
    st.text(max_size=10),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, item in node.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            out += _paths(item, (*prefix, i))
    return out


def _replace(node: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = list(node) if isinstance(node, list) else dict(node)
    copy[head] = _replace(node[head], rest, value)
    return copy


@st.composite
def documents(draw) -> str:
    doc = draw(st.sampled_from(SHAPES))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        doc = _replace(doc, paths[draw(st.integers(0, len(paths) - 1))], draw(values))
    return yaml.safe_dump(doc, allow_unicode=False)


def _import(text: str, actor) -> None:
    with contextlib.suppress(openslo.OpenSLOError):
        openslo.import_documents(text, actor=actor, dry_run=True)


@pytest.fixture
def shop(operator):
    return make_service(operator, "shop")


EXAMPLES = int(os.environ.get("OPENSLO_FUZZ_EXAMPLES", "300"))  # raise for a longer campaign
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(text=documents())
def test_any_value_anywhere_gives_a_result_or_the_importers_error(operator, shop, text):
    _import(text, operator.user)


@FUZZ
@given(text=st.text(max_size=200) | st.builds(yaml.safe_dump, values))
def test_any_text_gives_a_result_or_the_importers_error(operator, text):
    _import(text, operator.user)


@settings(
    max_examples=max(60, EXAMPLES // 5),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=documents())
def test_the_api_never_answers_500(operator, shop, text):
    response = operator.client().post(
        "/api/v1/openslo/import?dry_run=1",
        data=text.encode("utf-8"),
        content_type="application/yaml",
    )
    assert response.status_code in (200, 400), response.content
