"""Layer 3: dynamic thresholds. A breaker threshold (the slow-call duration) follows its metric:
mean + k x sigma over a sliding window (default 5 min, k = 2), recomputed every
DYNAMIC_RECOMPUTE_SECONDS from the control plane's own samples, or from a PromQL range query
when PROMETHEUS_URL is set and the breaker names a query, or pushed through the API."""

from __future__ import annotations

import json
import logging
import statistics
import time
from datetime import timedelta
from urllib.parse import urlencode

import urllib3
from django.conf import settings
from django.utils import timezone

from breakers.control import set_dynamic_value
from breakers.models import CircuitBreaker
from replay.models import DeliveryAttempt

log = logging.getLogger(__name__)
MIN_SAMPLES = 10
# Below this a threshold would call a fast handler's ordinary jitter slow.
FLOOR_SECONDS = 0.01


def mean_plus_k_sigma(values: list[float], k: float) -> float | None:
    if len(values) < MIN_SAMPLES:
        return None
    return statistics.fmean(values) + k * statistics.pstdev(values)


def samples_from_attempts(breaker: CircuitBreaker) -> list[float]:
    """Durations in seconds of the route's handler calls in the window."""
    since = timezone.now() - timedelta(seconds=breaker.dynamic_window_s)
    called = [
        DeliveryAttempt.Outcome.DELIVERED,
        DeliveryAttempt.Outcome.FAILED,
        DeliveryAttempt.Outcome.TIMEOUT,
        DeliveryAttempt.Outcome.PERMANENT,
    ]
    durations = DeliveryAttempt.objects.filter(
        route_id=breaker.route_id, started_at__gte=since, outcome__in=called
    ).values_list("duration_ms", flat=True)[:50_000]
    return [d / 1000 for d in durations]


def samples_from_prometheus(breaker: CircuitBreaker) -> list[float]:
    end = time.time()
    query = urlencode(
        {
            "query": breaker.dynamic_query,
            "start": end - breaker.dynamic_window_s,
            "end": end,
            "step": "15s",
        }
    )
    response = urllib3.request(
        "GET", f"{settings.PROMETHEUS_URL}/api/v1/query_range?{query}", timeout=5.0, retries=False
    )
    if response.status != 200:
        raise RuntimeError(f"Prometheus answered {response.status}")
    body = json.loads(response.data)
    return [
        float(v)
        for series in body["data"]["result"]
        for _, v in series["values"]
        if v not in ("NaN", "+Inf", "-Inf")
    ]


def recompute(breaker: CircuitBreaker) -> float | None:
    use_prometheus = bool(settings.PROMETHEUS_URL and breaker.dynamic_query)
    try:
        values = (
            samples_from_prometheus(breaker) if use_prometheus else samples_from_attempts(breaker)
        )
    except Exception as exc:  # a down Prometheus keeps the last value
        log.warning("dynamic threshold of %s: %s", breaker, exc)
        return None
    value = mean_plus_k_sigma(values, breaker.dynamic_k)
    if value is None or value <= 0:
        return None
    value = round(max(value, FLOOR_SECONDS), 4)
    if value != breaker.dynamic_value:
        set_dynamic_value(breaker, value, source="prometheus" if use_prometheus else "samples")
    return value


def recompute_all() -> int:
    """Every breaker with a dynamic threshold that is not fed by pushes."""
    done = 0
    for breaker in CircuitBreaker.objects.exclude(dynamic_field="").exclude(dynamic_source="push"):
        if recompute(breaker) is not None:
            done += 1
    return done
