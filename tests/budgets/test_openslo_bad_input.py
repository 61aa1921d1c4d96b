"""OpenSLO documents of the wrong shape: a 400 (or a CommandError) naming the field, never a 500."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import CommandError, call_command

from budgets import openslo
from budgets.models import SLO
from tests.budgets.conftest import make_service
from tests.budgets.test_openslo_spec_shapes import RATIO_TIMESLICES

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def _doc(**changes) -> dict:
    doc = yaml.safe_load(RATIO_TIMESLICES)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value
    return doc


def _text(**changes) -> str:
    return yaml.safe_dump(_doc(**changes), allow_unicode=True)


SERVICE_DOC = "apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: shop\n"
SLI_DOC = "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: lonely}\nspec:\n"
CASES = [
    (_text(metadata=["name", "home-page"]), "documents[0].metadata", "mapping"),
    (
        _text(spec__timeWindow=[{"duration": "1M", "calendar": ["UTC"]}]),
        "documents[0].spec.timeWindow[0].calendar",
        "mapping",
    ),
    (
        RATIO_TIMESLICES.replace("target: 0.995", "target: 1e400"),
        "documents[0].spec.objectives[0].target",
        "number",
    ),
    (
        RATIO_TIMESLICES.replace("target: 0.995", "target: 1.0e+300"),
        "documents[0].spec.objectives[0].target",
        "number",
    ),
    (
        RATIO_TIMESLICES.replace("target: 0.995", "target: 1e22"),
        "documents[0].spec.objectives[0].target",
        "number",
    ),
    (
        RATIO_TIMESLICES.replace("target: 0.995", "target: .inf"),
        "documents[0].spec.objectives[0].target",
        "finite",
    ),
    (
        RATIO_TIMESLICES.replace("target: 0.995", "targetPercent: 99e999999"),
        "documents[0].spec.objectives[0].targetPercent",
        "number",
    ),
    (_text(spec__objectives=[["target", 0.99]]), "documents[0].spec.objectives[0]", "mapping"),
    (_text(spec__objectives={"target": 0.99}), "documents[0].spec.objectives", "objective"),
    (_text(spec__indicator=["ratioMetric"]), "documents[0].spec.indicator", "required"),
    (
        _text(spec__indicator__spec__ratioMetric__good=["query"]),
        "documents[0].spec.indicator.spec.ratioMetric.good",
        "mapping",
    ),
    (_text(spec__timeWindow=[{"duration": 14}]), "documents[0].spec.timeWindow[0].duration", ""),
    (
        _text(spec__timeWindow=[{"duration": "2w", "isRolling": "yes"}]),
        "documents[0].spec.timeWindow[0].isRolling",
        "true or false",
    ),
    (
        _text(metadata__labels={"team": {"name": "web"}}),
        "documents[0].metadata.labels.team",
        "text",
    ),
    (_text(metadata__labels={"tier": 1}), "documents[0].metadata.labels.tier", "text"),
    (_text(metadata__labels=["team"]), "documents[0].metadata.labels", "mapping"),
    (_text(metadata__name="x" * 64), "documents[0].metadata.name", "at most 63"),
    (_text(metadata__displayName="D" * 201), "documents[0].metadata.displayName", "at most 200"),
    (_text(spec__description="d" * 1051), "documents[0].spec.description", "at most 1050"),
    (
        _text(spec__objectives__0__displayName="Ω" * 201),
        "documents[0].spec.objectives[0].displayName",
        "at most 200",
    ),
    (
        RATIO_TIMESLICES.replace("displayName: Mostly up", 'displayName: "\\ud800"'),
        "documents[0].spec.objectives[0].displayName",
        "surrogate",
    ),
    (_text(spec__service=["shop"]), "documents[0].spec.service", "Service name"),
    (
        RATIO_TIMESLICES.replace("description:", '"\\udc00x": 1\n  description:'),
        "documents[0].spec",
        "a key",
    ),
    (_text(spec__budgetingMethod={"a": 1}), "documents[0].spec.budgetingMethod", "supported"),
    (_text(spec__objectives__0__op="above"), "documents[0].spec.objectives[0].op", "one of"),
    (
        _text(spec__objectives__0__timeSliceWindow="1M"),
        "documents[0].spec.objectives[0].timeSliceWindow",
        "divide an hour",
    ),
    (
        RATIO_TIMESLICES.replace("query: sum(rate(home_requests[1m]))", "query: !!binary aGk="),
        "documents[0].spec.indicator.spec.ratioMetric.total.metricSource.spec.query",
        "plain YAML",
    ),
    (RATIO_TIMESLICES.replace("kind: SLO", "kind: [SLO]"), "documents[0].kind", "supported"),
    (
        RATIO_TIMESLICES.replace("query: sum(rate(home_requests[1m]))", "startTime: 2024-01-01"),
        "documents[0].spec.indicator.spec.ratioMetric.total.metricSource.spec.startTime",
        "only allowed in calendar.startTime",
    ),
    (
        _text(
            spec__timeWindow=[
                {"duration": "1M", "calendar": {"startTime": "0001-01-01T00:00:00+01:00"}}
            ]
        ),
        "documents[0].spec.timeWindow[0].calendar.startTime",
        "out of range",
    ),
    (SLI_DOC + "  ratioMetric: {good: {}}\n", "documents[0].spec.ratioMetric", "total"),
    (SLI_DOC + "  thresholdMetric: [q]\n", "documents[0].spec.thresholdMetric", "mapping"),
    (SLI_DOC + "  neither: 1\n", "documents[0].spec", "ratioMetric or thresholdMetric"),
    (
        SERVICE_DOC + "spec: {}\n---\n" + SERVICE_DOC + "spec: {}\n",
        "documents[1].metadata.name",
        "same",
    ),
    (SERVICE_DOC + "  labels: {team: [7]}\nspec: {}\n", "documents[0].metadata.labels.team", ""),
    ("a: &a [*a, *a]\nb: *a\n", "documents[0]", "too large"),
    (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
        "documents[0]",
        "too large",
    ),
    ("[" * 5000 + "]" * 5000, "", ""),
    ("- 1\n- 2\n", "documents[0]", "mapping"),
    ("42\n", "documents[0]", "mapping"),
]


@pytest.fixture
def shop(operator):
    return make_service(operator, "shop")


@pytest.mark.parametrize(("text", "path", "words"), CASES)
def test_a_bad_shape_is_refused_naming_the_field(operator, shop, text, path, words):
    with pytest.raises(openslo.OpenSLOError) as caught:
        openslo.import_documents(text, actor=operator.user)
    if path:
        assert caught.value.path.startswith(path), str(caught.value)
    assert words in caught.value.message, str(caught.value)
    assert not SLO.objects.exists()


@pytest.mark.parametrize(("text", "path", "words"), CASES)
def test_the_api_answers_400_naming_the_field(operator, shop, text, path, words):
    response = operator.client().post(
        "/api/v1/openslo/import",
        data=text.encode("utf-8", "surrogatepass"),
        content_type="application/yaml",
    )
    assert response.status_code == 400, response.content
    if path:
        assert any(key.startswith(path) for key in response.json()["errors"]), response.json()


@pytest.mark.parametrize(("text", "path", "words"), CASES[:6])
def test_the_command_raises_a_command_error_naming_the_field(
    operator, shop, tmp_path, text, path, words
):
    file = tmp_path / "slo.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(CommandError, match=path.replace("[", r"\[").replace("]", r"\]")):
        call_command("openslo_import", str(file), stdout=io.StringIO())


def test_a_standalone_sli_document_is_checked_and_a_good_one_imports_nothing(operator):
    good = (
        SLI_DOC
        + "  ratioMetric:\n"
        + "    good: {metricSource: {type: X}}\n"
        + "    total: {metricSource: {type: X}}\n"
    )
    assert openslo.import_documents(good, actor=operator.user) == []


def test_the_command_refuses_a_file_that_is_not_utf8(operator, tmp_path):
    file = tmp_path / "slo.yaml"
    file.write_bytes(b"apiVersion: openslo/v1\nkind: \xff\xfe\n")
    with pytest.raises(CommandError, match="UTF-8"):
        call_command("openslo_import", str(file), stdout=io.StringIO())


def test_a_json_body_with_a_surrogate_key_is_a_400(operator, shop):
    response = operator.client().post(
        "/api/v1/openslo/import",
        {"yaml": RATIO_TIMESLICES.replace("description:", '"\\ud800": 1\n  description:')},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "documents[0].spec" in response.json()["errors"]
