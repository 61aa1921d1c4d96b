"""Work items: audited verbs, the key pattern, CSV export/import round trip, bad rows
reported by line and field with the good rows kept, and the leaderboard."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from budgets import work_items
from budgets.maths import InvalidInput
from budgets.models import WorkItem
from budgets.reports import build_report, month_period
from controlplane.models import AuditEntry
from tests.budgets.conftest import make_service, make_slo

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

NOW = datetime(2025, 3, 14, 12, 30, tzinfo=UTC)


@pytest.fixture
def pay(operator):
    service = make_service(operator, "pay")
    make_slo(operator, service)
    return service


def item(operator, key="OPS-1", **fields):
    data = {"key": key, "title": "Retry with jitter", "service": "pay", **fields}
    return work_items.create_work_item(actor=operator.user, **data)


def test_creating_a_work_item_is_audited(operator, pay):
    made = item(operator, assignee="ana", saved_minutes="12.5", status="done")
    assert (made.service, made.saved_minutes, made.status) == (pay, 12.5, "done")
    entry = AuditEntry.objects.get(action="work_item.create")
    assert entry.object_id == str(made.pk)
    assert entry.actor == operator.user


def test_a_change_and_a_delete_are_audited(operator, pay):
    made = item(operator)
    work_items.update_work_item(made, actor=operator.user, status="in_progress")
    made.refresh_from_db()
    assert made.status == "in_progress"
    change = AuditEntry.objects.get(action="work_item.update")
    assert change.before["status"] == "open" and change.after["status"] == "in_progress"
    work_items.delete_work_item(made, actor=operator.user)
    assert not WorkItem.objects.exists()
    assert AuditEntry.objects.filter(action="work_item.delete").count() == 1


def test_a_key_must_match_the_configured_pattern(operator, pay, settings):
    with pytest.raises(InvalidInput) as caught:
        item(operator, key="ops 1")
    assert caught.value.field == "key"
    settings.BUDGETS_WORK_ITEM_KEY_PATTERN = r"#[0-9]+"
    assert item(operator, key="#42").key == "#42"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"service": "nope"}, "service"),
        ({"status": "closed"}, "status"),
        ({"saved_share": "1.5"}, "saved_share"),
        ({"saved_minutes": "lots"}, "saved_minutes"),
        ({"episode_start": "2025-03-01T00:00"}, "episode_start"),
        ({"episode_start": "2025-03-01T00:30Z"}, "episode_start"),
        ({"url": "ftp://tracker/OPS-1"}, "url"),
        ({"title": ""}, "title"),
    ],
)
def test_bad_values_name_their_field(operator, pay, fields, field):
    with pytest.raises(InvalidInput) as caught:
        item(operator, **fields)
    assert caught.value.field == field


def test_a_key_is_unique(operator, pay):
    item(operator)
    with pytest.raises(InvalidInput) as caught:
        item(operator)
    assert caught.value.field == "key"


def test_csv_export_then_import_round_trips(operator, pay):
    item(
        operator,
        url="https://tracker.example/OPS-1",
        assignee="ana",
        status="done",
        episode_start="2025-03-05T08:00:00Z",
        saved_minutes="30",
        saved_share="0.125",
    )
    item(operator, key="OPS-2", title='A "quoted", title')
    before = list(WorkItem.objects.order_by("key").values(*_compared()))
    text = work_items.to_csv(WorkItem.objects.order_by("key"))
    WorkItem.objects.all().delete()
    result = work_items.import_csv(text, actor=operator.user)
    assert result.errors == []
    assert sorted(result.created) == ["OPS-1", "OPS-2"]
    assert list(WorkItem.objects.order_by("key").values(*_compared())) == before
    again = work_items.import_csv(text, actor=operator.user)  # same file: updates, no dupes
    assert sorted(again.updated) == ["OPS-1", "OPS-2"] and again.created == []
    assert WorkItem.objects.count() == 2


def _compared():
    return [f for f in work_items.FIELDS if f != "service"] + ["service_id"]


def test_bad_csv_rows_are_reported_by_line_and_field_and_good_rows_kept(operator, pay):
    text = (
        "key,title,service,status,saved_share\n"
        "OPS-1,Good one,pay,open,0.1\n"
        "bad key,Bad key,pay,open,\n"
        "OPS-3,Unknown service,nowhere,open,\n"
        "OPS-4,Too short\n"
        "OPS-5,Bad share,pay,open,2\n"
        "OPS-1,Repeated,pay,open,\n"
        "OPS-7,Good too,pay,done,0.2\n"
    )
    result = work_items.import_csv(text, actor=operator.user)
    assert result.created == ["OPS-1", "OPS-7"]
    assert [(e["line"], e["field"]) for e in result.errors] == [
        (3, "key"),
        (4, "service"),
        (5, ""),
        (6, "saved_share"),
        (7, "key"),
    ]
    assert set(WorkItem.objects.values_list("key", flat=True)) == {"OPS-1", "OPS-7"}


@pytest.mark.parametrize(
    "text",
    ["", "key,title,colour\nOPS-1,x,red\n", "title,service\nx,pay\n", "k\x00ey\n"],
)
def test_an_unreadable_file_is_refused_naming_the_file(operator, pay, text):
    with pytest.raises(InvalidInput) as caught:
        work_items.import_csv(text, actor=operator.user)
    assert caught.value.field == "file"


def test_the_leaderboard_sums_done_items_per_assignee_and_team(operator, pay):
    make_service(operator, "mail")  # team "t" too
    item(operator, "OPS-1", assignee="ana", status="done", saved_share="0.25")
    item(operator, "OPS-2", assignee="ana", status="done", saved_minutes="10")
    item(operator, "OPS-3", assignee="bo", status="done", saved_share="0.5")
    item(operator, "OPS-4", assignee="bo", status="open", saved_share="0.9")  # not done
    item(  # episode in February: another period
        operator,
        "OPS-5",
        assignee="cy",
        status="done",
        saved_share="0.9",
        episode_start="2025-02-10T00:00:00Z",
    )
    WorkItem.objects.update(created_at=NOW)
    report = build_report(month_period("2025-03"), NOW)
    assert [(r.name, r.items, r.saved_share, r.saved_minutes) for r in report.by_assignee] == [
        ("bo", 1, 0.5, 0.0),
        ("ana", 2, 0.25, 10.0),
    ]
    assert [(r.name, r.items) for r in report.by_team] == [("t", 3)]


def test_an_admin_add_goes_through_the_audited_verb(pay):
    from django.contrib.auth import get_user_model
    from django.test import Client

    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(root)
    data = {
        "key": "OPS-77",
        "url": "",
        "title": "From the admin",
        "service": pay.pk,
        "assignee": "",
        "status": "open",
        "episode_start_0": "",
        "episode_start_1": "",
        "saved_minutes": "",
        "saved_share": "",
    }
    assert client.post("/admin/budgets/workitem/add/", data).status_code == 302
    made = WorkItem.objects.get(key="OPS-77")
    assert AuditEntry.objects.get(action="work_item.create").object_id == str(made.pk)
    bad = client.post("/admin/budgets/workitem/add/", {**data, "key": "nope"})
    assert bad.status_code == 200 and "key must match" in bad.content.decode()


def test_the_leaderboard_counts_services_without_slos(operator, pay):
    make_service(operator, "docs")  # no SLO
    item(operator, "OPS-1", service="docs", assignee="di", status="done", saved_share="0.3")
    WorkItem.objects.update(created_at=NOW)
    report = build_report(month_period("2025-03"), NOW)
    assert [(r.name, r.saved_share) for r in report.by_assignee] == [("di", 0.3)]
