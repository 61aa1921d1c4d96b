"""OpenSLO v1: import, export, the round trip, and clear errors for what is not supported."""

from __future__ import annotations

import io
import textwrap

import pytest
import yaml
from django.core.management import CommandError, call_command

from budgets import openslo
from budgets.models import SLO
from budgets.slos import SLO_FIELDS
from controlplane.models import Service
from tests.budgets.conftest import make_service, make_slo

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

DOCS = textwrap.dedent(
    """\
    apiVersion: openslo/v1
    kind: Service
    metadata:
      name: web
      displayName: Web shop
      labels:
        team: [storefront]
    spec:
      description: The shop front.
    ---
    apiVersion: openslo/v1
    kind: SLO
    metadata:
      name: web-availability
      displayName: Successful requests
    spec:
      description: 99.9 % of requests succeed
      service: web
      indicator:
        metadata:
          name: web-successful-requests-ratio
        spec:
          ratioMetric:
            counter: true
            good:
              metricSource:
                type: Prometheus
                spec:
                  query: sum(http_requests{code=~"2xx"})
            total:
              metricSource:
                type: Prometheus
                spec:
                  query: sum(http_requests)
      timeWindow:
        - duration: 28d
          isRolling: true
      budgetingMethod: Occurrences
      objectives:
        - displayName: Good
          target: 0.999
    ---
    - apiVersion: openslo/v1
      kind: SLI
      metadata:
        name: delivery-latency
      spec:
        thresholdMetric:
          metricSource:
            type: ControlPlane
            spec:
              sli: latency
    - apiVersion: openslo/v1
      kind: SLO
      metadata:
        name: fast-deliveries
      spec:
        service: web
        indicatorRef: delivery-latency
        timeWindow:
          - duration: 1M
            isRolling: false
            calendar:
              startTime: 2024-01-01 00:00:00
              timeZone: UTC
        budgetingMethod: Timeslices
        objectives:
          - op: lte
            value: 300
            targetPercent: 99.5
            timeSliceTarget: 0.95
            timeSliceWindow: 5m
    """
)


def test_it_imports_services_and_slos(operator):
    results = openslo.import_documents(DOCS, actor=operator.user)
    assert [(r.kind, r.name, r.action) for r in results] == [
        ("Service", "web", "created"),
        ("SLO", "web/web-availability", "created"),
        ("SLO", "web/fast-deliveries", "created"),
    ]
    web = Service.objects.get(slug="web")
    assert (web.name, web.team) == ("Web shop", "storefront")
    ratio = SLO.objects.get(name="web-availability")
    assert (ratio.sli, str(ratio.target), ratio.window) == ("external", "0.999000", "rolling:28d")
    latency = SLO.objects.get(name="fast-deliveries")
    assert (latency.sli, latency.latency_threshold_ms, latency.window) == (
        "latency",
        300.0,
        "calendar:month",
    )
    assert (latency.budgeting_method, latency.slice_minutes, str(latency.slice_target)) == (
        "timeslices",
        5,
        "0.950000",
    )
    assert str(latency.target) == "0.995000"


def test_importing_again_changes_nothing_and_a_new_target_updates(operator):
    openslo.import_documents(DOCS, actor=operator.user)
    again = openslo.import_documents(DOCS, actor=operator.user)
    assert {r.action for r in again} == {"unchanged"}
    changed = openslo.import_documents(
        DOCS.replace("target: 0.999", "target: 0.9995"), actor=operator.user
    )
    assert ("SLO", "web/web-availability", "updated") in [
        (r.kind, r.name, r.action) for r in changed
    ]
    assert str(SLO.objects.get(name="web-availability").target) == "0.999500"


def test_the_round_trip_keeps_every_field(operator):
    service = make_service(operator, "pay", tier="tier-1")
    make_slo(operator, service, "ok")
    make_slo(
        operator,
        service,
        "fast",
        sli="latency",
        latency_threshold_ms=250.5,
        window="calendar:quarter",
        budgeting_method="timeslices",
        slice_minutes=60,
        slice_target="0.99",
        target="0.9999",
        display_name="Fast",
        description="d",
    )
    make_slo(operator, service, "pushed", sli="external", window="rolling:7d")
    openslo.import_documents(DOCS, actor=operator.user)
    fields = ["service__slug", *[f for f in SLO_FIELDS if f != "service"], "openslo"]
    before = list(SLO.objects.order_by("service__slug", "name").values_list(*fields))
    exported = openslo.export_documents()
    SLO.objects.all().delete()
    results = openslo.import_documents(exported, actor=operator.user)
    assert {r.action for r in results if r.kind == "SLO"} == {"created"}
    after = list(SLO.objects.order_by("service__slug", "name").values_list(*fields))
    assert after == before
    assert openslo.export_documents() == exported


def test_export_narrows_to_a_service(operator):
    make_slo(operator, make_service(operator, "a"))
    make_slo(operator, make_service(operator, "b"))
    docs = list(yaml.safe_load_all(openslo.export_documents(["b"])))
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Service", "b"),
        ("SLO", "delivery"),
    ]
    assert docs[1]["spec"]["timeWindow"] == [{"duration": "30d", "isRolling": True}]


def _slo_doc(**spec_changes) -> str:
    doc = yaml.safe_load(DOCS.split("---\n")[1])
    doc["spec"].update(spec_changes)
    return yaml.safe_dump(doc)


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        (
            "apiVersion: openslo/v1alpha\nkind: SLO\nmetadata: {name: x}\nspec: {}\n",
            "documents[0].apiVersion",
            "openslo/v1",
        ),
        (
            "apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: x}\nspec: {}\n",
            "documents[0].kind",
            "not supported",
        ),
        (
            "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: x}\nspec: {}\n",
            "documents[0].kind",
            "not supported",
        ),
        (
            _slo_doc(budgetingMethod="Ratios"),
            "documents[0].spec.budgetingMethod",
            "RatioTimeslices",
        ),
        (
            _slo_doc(timeWindow=[{"duration": "1h", "isRolling": True}]),
            "documents[0].spec.timeWindow[0].duration",
            "whole days from 3",
        ),
        (
            _slo_doc(timeWindow=[{"duration": "1Y", "isRolling": False}]),
            "documents[0].spec.timeWindow[0].duration",
            "1M",
        ),
        (
            _slo_doc(
                timeWindow=[
                    {
                        "duration": "1M",
                        "isRolling": False,
                        "calendar": {
                            "startTime": "2024-01-01 00:00:00",
                            "timeZone": "Mars/Olympus_Mons",
                        },
                    }
                ]
            ),
            "documents[0].spec.timeWindow[0].calendar.timeZone",
            "IANA",
        ),
        (
            _slo_doc(
                objectives=[
                    {"displayName": "Fast!", "target": 0.99},
                    {"displayName": "fast", "target": 0.999},
                ]
            ),
            "documents[0].spec.objectives[1].displayName",
            "same SLO name",
        ),
        (
            _slo_doc(objectives=[{"target": 1.0}]),
            "documents[0].spec.objectives[0].target",
            "between",
        ),
        (
            _slo_doc(objectives=[{"target": 0.999, "timeSliceWindow": "1m"}]),
            "documents[0].spec.objectives[0].timeSliceWindow",
            "only for Timeslices",
        ),
        (_slo_doc(alertPolicies=["page-me"]), "documents[0].spec.alertPolicies", "not supported"),
        (_slo_doc(service="ghost"), "documents[0].spec.service", "no service"),
        (_slo_doc(indicatorRef="nope"), "documents[0].spec.indicatorRef", "give indicator"),
        ("just: [a, list", "yaml", "not valid YAML"),
    ],
)
def test_what_is_not_supported_is_named(operator, text, path, words):
    with pytest.raises(openslo.OpenSLOError) as caught:
        openslo.import_documents(text, actor=operator.user)
    assert caught.value.path == path, str(caught.value)
    assert words in caught.value.message
    assert not SLO.objects.exists()


def test_a_raw_ratio_is_refused(operator):
    doc = yaml.safe_load(DOCS.split("---\n")[1])
    doc["spec"]["indicator"]["spec"]["ratioMetric"]["rawType"] = "success"
    with pytest.raises(openslo.OpenSLOError, match="raw"):
        openslo.import_documents(yaml.safe_dump(doc), actor=operator.user)


def test_an_import_is_all_or_nothing(operator):
    broken = DOCS.replace("timeSliceWindow: 5m", "timeSliceWindow: 7m")
    with pytest.raises(openslo.OpenSLOError) as caught:
        openslo.import_documents(broken, actor=operator.user)
    assert caught.value.path == "documents[3].spec.objectives[0].timeSliceWindow"
    assert not Service.objects.filter(slug="web").exists()


def test_the_management_commands(operator, tmp_path):
    path = tmp_path / "slos.yaml"
    path.write_text(DOCS)
    out = io.StringIO()
    call_command("openslo_import", str(path), "--dry-run", stdout=out)
    assert "dry run" in out.getvalue() and not SLO.objects.exists()
    call_command("openslo_import", str(path), stdout=io.StringIO())
    assert SLO.objects.count() == 2
    exported = io.StringIO()
    call_command("openslo_export", "--service", "web", stdout=exported)
    assert "kind: SLO" in exported.getvalue() and "web-availability" in exported.getvalue()
    path.write_text(DOCS.replace("budgetingMethod: Occurrences", "budgetingMethod: Ratio"))
    with pytest.raises(CommandError, match="budgetingMethod"):
        call_command("openslo_import", str(path), stdout=io.StringIO())


def test_the_api_imports_yaml_and_exports_it(operator, viewer):
    response = operator.client().post(
        "/api/v1/openslo/import", data=DOCS, content_type="application/yaml"
    )
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 3
    exported = viewer.client().get("/api/v1/openslo/export?service=web")
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("application/yaml")
    assert "fast-deliveries" in exported.content.decode()
    as_json = operator.client().post(
        "/api/v1/openslo/import?dry_run=1", {"yaml": exported.content.decode()}, format="json"
    )
    assert as_json.status_code == 200 and as_json.json()["dry_run"] is True


def test_the_api_names_what_is_not_supported(operator):
    response = operator.client().post(
        "/api/v1/openslo/import",
        data=DOCS.replace("budgetingMethod: Occurrences", "budgetingMethod: Ratios"),
        content_type="application/yaml",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "RatioTimeslices" in errors["documents[1].spec.budgetingMethod"][0]


def test_viewers_cannot_import(viewer):
    response = viewer.client().post(
        "/api/v1/openslo/import", data=DOCS, content_type="application/yaml"
    )
    assert response.status_code == 403
