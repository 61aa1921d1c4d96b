"""Outbound URLs (webhook routes, alert hooks) are checked by one rule: the parser that connects,
ports in the allow-list, and the resolved address at connect time (controlplane/egress.py)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from breakers.handlers import call_webhook
from breakers.models import Route
from budgets import alerts
from budgets.models import AlertEvent, BudgetAlertHook
from controlplane import egress
from tests.http_target import Target

# Old-style bare entries too, so the table also shows what the urlsplit check let through.
LOOPBACK_ONLY = ["127.0.0.1", "localhost", "127.0.0.1:8080", "localhost:8080"]

# Refused whatever port the allow-list grants on loopback.
HOSTILE = [
    "http://169.254.169.254\\@127.0.0.1/",  # urllib3 connects to what precedes the backslash
    "http://127.0.0.1:8080\\@localhost:8080/",
    "http://user@127.0.0.1:8080/",
    "http://user:pw@127.0.0.1:8080/",
    "http://127.0.0.1:8080@169.254.169.254/",
    "http://[::1]:8080/",  # IPv6 loopback is not listed
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:127.0.0.1]:8080/",  # IPv4-mapped forms are refused even for a listed IPv4
    "http://[::ffff:7f00:1]:8080/",
    "http://[fe80::1%25eth0]:8080/",
    "http://2852039166/",  # 169.254.169.254 as one decimal number
    "http://0251.0376.0251.0376/",  # ... in octal
    "http://0xa9.0xfe.0xa9.0xfe/",  # ... in hex
    "http://2130706433:8080/",  # 127.0.0.1 as a number
    "http://0177.0.0.1:8080/",
    "http://127.1:8080/",
    "http://169.254.169.254/",
    "http://127.0.0.1.:8080/",
    "http://127.0.0.1%2e:8080/",
    "http://127.0.0.1 :8080/",
    "http://127.0.0.1:99999/",
    "http://127.0.0.1:0/",
    "http://l\u00f6calhost:8080/",
    "ftp://127.0.0.1/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "http:///path-only",
    "",
]


@pytest.fixture
def loopback_only(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = LOOPBACK_ONLY


@pytest.mark.smoke
@pytest.mark.parametrize("url", [*HOSTILE, "http://127.0.0.1:8080/\n"])  # the APIs strip text
def test_hostile_urls_are_refused(url, loopback_only):
    assert egress.refusal(url) is not None
    assert not egress.url_allowed(url, resolve=True)


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("entries", "url", "allowed"),
    [
        (["127.0.0.1"], "http://127.0.0.1/", True),
        (["127.0.0.1"], "http://127.0.0.1:80/", True),
        (["127.0.0.1"], "http://127.0.0.1:6379/", False),  # a bare host is not every port
        (["127.0.0.1"], "https://127.0.0.1/", True),
        (["127.0.0.1"], "https://127.0.0.1:80/", False),
        (["127.0.0.1:8080"], "http://127.0.0.1:8080/x", True),
        (["127.0.0.1:8080"], "http://127.0.0.1:8081/x", False),
        (["127.0.0.1:8080"], "http://127.0.0.2:8080/x", False),
        (["127.0.0.1:*"], "http://127.0.0.1:6379/", True),
        (["[::1]:9000"], "http://[::1]:9000/", True),
        (["[::1]:9000"], "http://[0:0::1]:9000/", True),  # the same address
        (["[::1]:9000"], "http://[::1]:9001/", False),
        (["*.hooks.test"], "https://a.hooks.test/x", True),
        (["*.hooks.test"], "https://a.hooks.test:8443/x", False),
        (["*.hooks.test:8443"], "https://A.Hooks.Test:8443/x", True),
        (["*"], "http://169.254.169.254/", False),  # patterns never match an IP
        (["169.254.169.254"], "http://169.254.169.254/", True),  # naming it exactly does
        (["localhost:8000"], "http://localhost:8000/demo", True),
        (["10.20.0.0/16:8443"], "https://10.20.3.4:8443/x", True),
        (["10.20.0.0/16:8443"], "https://10.21.3.4:8443/x", False),
        (["10.20.0.0/16:8443"], "https://10.20.3.4/x", False),
        (["10.20.0.0/16"], "https://10.20.3.4/x", True),
        (["10.20.0.0/16:*"], "http://hooks.internal:80/", False),  # networks never match a name
        (["[fd00:1::/32]:*"], "http://[fd00:1:2::3]:9000/", True),
        (["[fd00:1::/32]:*"], "http://[fd00:2::3]:9000/", False),
    ],
)
def test_ports_and_hosts_follow_the_entry_rule(settings, entries, url, allowed):
    settings.WEBHOOK_ALLOWED_HOSTS = entries
    assert egress.url_allowed(url) is allowed, egress.refusal(url)


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("entry", "address", "reachable"),
    [
        ("*.hooks.test", "169.254.169.254", False),  # cloud metadata, link-local
        ("*.hooks.test", "169.254.1.1", False),
        ("*.hooks.test", "fe80::1", False),
        ("*.hooks.test", "fd00:ec2::254", False),
        ("*.hooks.test", "100.100.100.200", False),
        ("*.hooks.test", "127.0.0.1", False),
        ("*.hooks.test", "::1", False),
        ("*.hooks.test", "::ffff:127.0.0.1", False),
        ("*.hooks.test", "0.0.0.0", False),
        ("*.hooks.test", "0.1.2.3", False),
        ("*.hooks.test", "224.0.0.1", False),
        ("*.hooks.test", "2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("*.hooks.test", "10.1.2.3", True),
        ("*.hooks.test", "93.184.216.34", True),
        ("localhost", "127.0.0.1", True),
        ("localhost", "::1", True),
        ("localhost", "169.254.169.254", False),
        ("127.0.0.1:*", "127.0.0.1", True),
        ("127.0.0.1:*", "127.0.0.2", False),
        ("169.254.169.254", "169.254.169.254", True),
        ("10.0.0.0/8:*", "10.9.8.7", True),
        ("10.0.0.0/8:*", "11.0.0.1", False),
        ("127.0.0.0/8:*", "127.0.0.2", True),  # a loopback network may reach loopback
        ("[fd00::/16]:*", "fd00::5", True),
        ("[fe80::/16]:*", "fe80::1", False),  # link-local stays out, even when listed
        ("169.254.0.0/16:*", "169.254.169.254", False),  # and so does metadata
        ("[::/16]:*", "::1", False),  # loopback inside a wider network is not loopback's entry
    ],
)
def test_resolved_addresses_must_be_allowed_by_the_matching_entry(entry, address, reachable):
    entries = (egress.parse_entry(entry),)
    assert egress.reachable(ipaddress.ip_address(address), entries) is reachable


@pytest.mark.smoke
@pytest.mark.parametrize(
    "entry",
    [
        "127.0.0.1:x",
        "host:0",
        "[::1",
        "[host]:80",
        "a/b",
        "u@h",
        "",
        " :80",
        "0.0.0.0/0",  # wider than /8: not an entry but the internet
        "10.0.0.1/8",  # host bits set
        "[10.0.0.0/8]",
        "fd00::/16",  # IPv6 goes in brackets
        "10.0.0.0/33",
    ],
)
def test_bad_allow_list_entries_are_named(entry):
    if not entry.strip():
        assert egress.parse_allow_list((entry,)) == ()
        return
    with pytest.raises(ValueError, match="'"):
        egress.parse_entry(entry)


@pytest.mark.smoke
def test_a_name_matched_by_a_pattern_may_not_resolve_to_loopback(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["*:*"]
    assert egress.url_allowed("http://localhost:8080/")  # the URL alone matches `*`
    reason = egress.refusal("http://localhost:8080/", resolve=True)
    assert reason and "127.0.0.1" in reason
    settings.WEBHOOK_ALLOWED_HOSTS = ["localhost:*"]
    assert egress.url_allowed("http://localhost:8080/", resolve=True)


# --- at save time: the route API and the alert hook API answer 400 naming the field -----------


def _route_body(target: str) -> dict:
    return {
        "name": "r",
        "service": "checkout",
        "event_type": "*",
        "kind": "webhook",
        "target": target,
    }


@pytest.mark.parametrize("url", HOSTILE)
def test_the_route_api_refuses_hostile_targets(operator, checkout, loopback_only, url):
    response = operator.client().post("/api/v1/routes", _route_body(url), format="json")
    assert response.status_code == 400, response.content
    assert "target" in response.json()["errors"]
    assert not Route.objects.exists()


@pytest.mark.parametrize("url", HOSTILE)
def test_the_alert_hook_api_refuses_hostile_urls(operator, checkout, loopback_only, url):
    response = operator.client().post(
        "/api/v1/services/checkout/alert-hooks", {"url": url}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "url" in response.json()["errors"]
    assert not BudgetAlertHook.objects.exists()


def test_saving_a_name_that_resolves_to_loopback_under_a_pattern_is_refused(
    operator, checkout, settings
):
    settings.WEBHOOK_ALLOWED_HOSTS = ["*:*"]
    route = operator.client().post(
        "/api/v1/routes", _route_body("http://localhost:6379/"), format="json"
    )
    assert route.status_code == 400 and "127.0.0.1" in str(route.json()["errors"]["target"])
    hook = operator.client().post(
        "/api/v1/services/checkout/alert-hooks", {"url": "http://localhost:6379/"}, format="json"
    )
    assert hook.status_code == 400 and "url" in hook.json()["errors"]


def test_the_allow_list_port_rule_applies_when_saving(operator, checkout, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1:8000"]
    api = operator.client()
    assert (
        api.post("/api/v1/routes", _route_body("http://127.0.0.1:6379/"), format="json").status_code
        == 400
    )
    assert (
        api.post(
            "/api/v1/routes", _route_body("http://127.0.0.1:8000/x"), format="json"
        ).status_code
        == 201
    )


# --- at call time: nothing reaches a receiver the rule refuses ---------------------------------


def _envelope() -> dict:
    return {"id": "e1", "type": "order.created", "attempt": 1, "payload": {}}


def _route(url: str) -> Route:
    return Route(name="r", kind=Route.Kind.WEBHOOK, target=url, secret="s", timeout_seconds=2)


@pytest.mark.smoke
def test_a_backslash_url_stored_earlier_does_not_reach_the_host_before_the_backslash(settings):
    with Target() as receiver:
        port = receiver.server.server_address[1]
        # Only `localhost` is listed: urlsplit reads localhost, urllib3 would connect to 127.0.0.1.
        settings.WEBHOOK_ALLOWED_HOSTS = ["localhost", f"localhost:{port}"]
        result = call_webhook(
            _route(f"http://127.0.0.1:{port}\\@localhost:{port}/hook"), _envelope()
        )
        assert result.outcome == "permanent"
        assert receiver.calls == []


@pytest.mark.smoke
def test_the_connection_refuses_a_name_that_resolves_to_loopback_under_a_pattern(settings):
    with Target() as receiver:
        url = receiver.url.replace("127.0.0.1", "localhost")
        settings.WEBHOOK_ALLOWED_HOSTS = ["*:*"]  # the URL passes; its address must not
        with pytest.raises(egress.EgressRefused, match="127.0.0.1"):
            egress.PoolManager(retries=False).request("POST", url, body=b"{}")
        result = call_webhook(_route(url), _envelope())
        assert result.outcome != "delivered" and "egress refused" in result.error
        assert receiver.calls == []
        settings.WEBHOOK_ALLOWED_HOSTS = ["localhost:*"]
        assert call_webhook(_route(url), _envelope()).outcome == "delivered"
        assert len(receiver.calls) == 1


@pytest.mark.smoke
def test_a_network_entry_lets_both_clients_reach_an_address_inside_it(settings):
    import asyncio

    from breakers.handlers import call_webhook_async
    from controlplane.egress_async import AsyncClient

    async def through_the_loop(url):
        client = AsyncClient()
        try:
            return await call_webhook_async(client, _route(url), _envelope())
        finally:
            client.close()

    with Target() as receiver:
        settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.0/8:*"]
        assert call_webhook(_route(receiver.url), _envelope()).outcome == "delivered"
        assert asyncio.run(through_the_loop(receiver.url)).outcome == "delivered"
        settings.WEBHOOK_ALLOWED_HOSTS = ["10.0.0.0/8:*"]
        assert call_webhook(_route(receiver.url), _envelope()).outcome == "permanent"
        assert asyncio.run(through_the_loop(receiver.url)).outcome == "permanent"
        assert len(receiver.calls) == 2


@pytest.mark.smoke
def test_an_alert_hook_whose_name_resolves_to_loopback_is_refused_at_send(operator, settings):
    from tests.budgets.conftest import make_service, make_slo

    service = make_service(operator, "mail")
    slo = make_slo(operator, service)
    alert = AlertEvent.objects.create(
        slo=slo,
        rule="page",
        severity="page",
        burn_rate_threshold=14.4,
        long_window=timedelta(hours=1),
        short_window=timedelta(minutes=5),
        long_burn_rate=20,
        short_burn_rate=20,
    )
    with Target() as receiver:
        url = receiver.url.replace("127.0.0.1", "localhost")
        hook = BudgetAlertHook.objects.create(service=service, url=url)
        settings.WEBHOOK_ALLOWED_HOSTS = ["*:*"]
        assert alerts.send(alert.pk, hook.pk, "firing").startswith("refused")
        assert receiver.calls == []
        settings.WEBHOOK_ALLOWED_HOSTS = ["localhost:*"]
        assert alerts.send(alert.pk, hook.pk, "firing") == "HTTP 200"
        assert len(receiver.calls) == 1


# --- the setting: defaults that let the demo call this server back, bad entries stop the start --


def _start_settings(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    """Settings read in a fresh interpreter, as a process would start, with only ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROL", "PORT"))}
    clean |= {"DJANGO_SETTINGS_MODULE": "controlplane.settings"}
    clean |= {"CONTROLPLANE_VAR_DIR": str(tmp_path), **env}
    probe = "import django; django.setup(); from django.conf import settings as s; "
    probe += "print(','.join(s.WEBHOOK_ALLOWED_HOSTS))"
    return subprocess.run(
        [sys.executable, "-c", probe], env=clean, capture_output=True, text=True, timeout=60
    )


@pytest.mark.smoke
@pytest.mark.parametrize("port", [None, "8123"])
def test_the_default_allow_list_is_only_the_web_servers_own_port(tmp_path, port):
    result = _start_settings({"PORT": port} if port else {}, tmp_path)
    assert result.returncode == 0, result.stderr
    expected = port or "8000"  # the demo's downstream: CONTROLPLANE_DEMO_URL's default
    assert result.stdout.strip() == f"127.0.0.1:{expected},localhost:{expected}"


@pytest.mark.smoke
def test_a_bad_allow_list_entry_stops_the_start_naming_it(tmp_path):
    result = _start_settings(
        {"CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS": "ok.test,127.0.0.1:x"}, tmp_path
    )
    assert result.returncode != 0
    assert "CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1:x'" in result.stderr
