"""Work-item API: roles (viewer reads, operator writes), bad input naming the field, CSV
import through the API (raw body and upload) and the export."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from budgets.models import WorkItem
from controlplane.models import AuditEntry
from tests.budgets.conftest import make_service

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

URL = "/api/v1/work-items"
BODY = {"key": "OPS-9", "title": "Shed low priority first", "service": "pay", "assignee": "ana"}


@pytest.fixture
def pay(operator):
    return make_service(operator, "pay")


def test_an_operator_creates_changes_and_deletes_a_work_item(operator, pay):
    client = operator.client()
    made = client.post(URL, BODY, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["service"] == "pay" and made.json()["status"] == "open"
    pk = made.json()["id"]
    changed = client.patch(f"{URL}/{pk}", {"status": "done", "saved_share": 0.2}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["saved_share"] == 0.2
    assert client.delete(f"{URL}/{pk}").status_code == 204
    actions = AuditEntry.objects.filter(action__startswith="work_item")
    assert sorted(actions.values_list("action", flat=True)) == [
        "work_item.create",
        "work_item.delete",
        "work_item.update",
    ]


def test_a_viewer_reads_but_cannot_write(viewer, operator, pay):
    operator.client().post(URL, BODY, format="json")
    client = viewer.client()
    listed = client.get(URL)
    assert listed.status_code == 200
    assert [i["key"] for i in listed.json()["results"]] == ["OPS-9"]
    assert client.post(URL, {**BODY, "key": "OPS-10"}, format="json").status_code == 403
    pk = WorkItem.objects.get().pk
    assert client.patch(f"{URL}/{pk}", {"status": "done"}, format="json").status_code == 403
    assert client.delete(f"{URL}/{pk}").status_code == 403
    assert client.post(f"{URL}/import", {"csv": "key\n"}, format="json").status_code == 403


def test_no_role_no_access(outsider, anon, pay):
    assert outsider.client().get(URL).status_code == 403
    assert anon.get(URL).status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"key": "nope"}, "key"),
        ({"service": "nowhere"}, "service"),
        ({"status": "finished"}, "status"),
        ({"saved_share": 3}, "saved_share"),
        ({"saved_minutes": "x"}, "saved_minutes"),
        ({"episode_start": "yesterday"}, "episode_start"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"colour": "red"}, "colour"),
        ({"title": "a\x00b"}, "title"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(operator, pay, change, field):
    response = operator.client().post(URL, {**BODY, **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert not WorkItem.objects.exists()


def test_a_list_filter_with_a_bad_status_names_it(viewer, pay):
    response = viewer.client().get(URL, {"status": "nope"})
    assert response.status_code == 400
    assert "status" in response.json()["errors"]


def test_csv_import_through_the_api_reports_bad_rows_and_keeps_good_ones(operator, pay):
    text = "key,title,service\nOPS-1,Fine,pay\nOPS-2,Lost,nowhere\n"
    response = operator.client().post(f"{URL}/import", text.encode(), content_type="text/csv")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] == ["OPS-1"]
    assert body["errors"] == [
        {"line": 3, "field": "service", "message": "service no service with slug 'nowhere'"}
    ]


def test_csv_upload_and_export_round_trip(operator, pay):
    client = operator.client()
    client.post(URL, {**BODY, "saved_minutes": 12.5, "status": "done"}, format="json")
    exported = client.get(f"{URL}/export")
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("text/csv")
    WorkItem.objects.all().delete()
    upload = SimpleUploadedFile("items.csv", exported.content, content_type="text/csv")
    response = client.post(f"{URL}/import", {"file": upload}, format="multipart")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == ["OPS-9"]
    restored = WorkItem.objects.get()
    assert (restored.saved_minutes, restored.status, restored.assignee) == (12.5, "done", "ana")


def test_a_file_that_is_not_utf8_is_a_400_naming_the_file(operator, pay):
    response = operator.client().post(f"{URL}/import", b"\xff\xfe\x00", content_type="text/csv")
    assert response.status_code == 400
    assert "file" in response.json()["errors"]
