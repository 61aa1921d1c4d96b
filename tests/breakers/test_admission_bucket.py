"""One contract, two buckets: LocalBuckets (Python, behind a lock) and RedisBuckets (the same
rule in Lua). Every test runs against both with explicit clock readings, so it is exact; the
last one runs random request sequences through both side by side and requires equal answers.
Then two processes share one Redis bucket and together never get more than rate * t + burst."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from breakers.admission import LocalBuckets, RedisBuckets, Take, retry_after, take
from tests.conftest import require_redis

T0 = 1_000_000.0


@pytest.fixture(params=["local", "redis"])
def buckets(request):
    if request.param == "local":
        yield LocalBuckets()
        return
    if os.environ.get("CONTROLPLANE_TEST_EMBEDDED") == "1":
        pytest.skip("the embedded default has no Redis: the make test run covers this store")
    client = redis.Redis.from_url(require_redis())
    yield RedisBuckets(client)
    for key in client.scan_iter(match="test:admission:*", count=500):
        client.delete(key)
    client.close()


@pytest.fixture
def key():
    return f"test:admission:{uuid.uuid4().hex[:10]}"


@pytest.mark.smoke
def test_a_new_bucket_is_full_and_gives_at_most_its_burst(buckets, key):
    got = buckets.take(key, 10.0, 5, 0, 8, 0.0, now=T0)
    assert (got.urgent, got.normal) == (0, 5)
    assert got.tokens == pytest.approx(0.0)
    assert buckets.take(key, 10.0, 5, 0, 1, 0.0, now=T0).normal == 0


@pytest.mark.smoke
def test_it_refills_at_the_rate_and_never_above_the_burst(buckets, key):
    buckets.take(key, 10.0, 5, 0, 5, 0.0, now=T0)
    assert buckets.take(key, 10.0, 5, 0, 5, 0.0, now=T0 + 0.3).normal == 3  # 0.3 s * 10/s
    # An hour idle fills it to the burst, not to 36,000.
    assert buckets.take(key, 10.0, 5, 0, 100, 0.0, now=T0 + 3600).normal == 5


def test_a_clock_reading_from_the_past_adds_nothing(buckets, key):
    buckets.take(key, 10.0, 5, 0, 5, 0.0, now=T0 + 10)
    assert buckets.take(key, 10.0, 5, 0, 5, 0.0, now=T0).normal == 0


@pytest.mark.smoke
def test_medium_and_low_leave_the_reserve_to_critical_and_high(buckets, key):
    # burst 10, reserve 2 tokens: normal events get 8, then urgent ones still get 2.
    got = buckets.take(key, 1.0, 10, 0, 10, 2.0, now=T0)
    assert got.normal == 8
    urgent = buckets.take(key, 1.0, 10, 5, 0, 2.0, now=T0)
    assert urgent.urgent == 2
    assert buckets.take(key, 1.0, 10, 1, 1, 2.0, now=T0) == Take(0, 0, pytest.approx(0.0))


@pytest.mark.smoke
def test_urgent_events_are_served_before_normal_ones_in_one_request(buckets, key):
    got = buckets.take(key, 1.0, 4, 3, 3, 0.0, now=T0)
    assert (got.urgent, got.normal) == (3, 1)


def test_a_fractional_token_is_not_an_event(buckets, key):
    buckets.take(key, 2.0, 2, 2, 0, 0.0, now=T0)
    got = buckets.take(key, 2.0, 2, 1, 0, 0.0, now=T0 + 0.4)  # 0.8 of a token
    assert got.urgent == 0
    assert got.tokens == pytest.approx(0.8)


@pytest.mark.smoke
def test_retry_after_is_when_the_bucket_holds_enough_for_the_shed_events(buckets, key):
    # rate 2/s, burst 4, reserve 1: 4 normal events asked on an empty bucket need 1 + 4 tokens.
    buckets.take(key, 2.0, 4, 4, 0, 1.0, now=T0)
    got = buckets.take(key, 2.0, 4, 1, 4, 1.0, now=T0)
    assert (got.urgent, got.normal) == (0, 0)
    wait_urgent, wait_normal = retry_after(got, 1, 4, 2.0, 1.0)
    assert (wait_urgent, wait_normal) == (1, 3)  # 1 token: 0.5 s -> 1; 6 tokens: 3 s
    # Sent again at those times, they are admitted.
    assert buckets.take(key, 2.0, 4, 1, 0, 1.0, now=T0 + wait_urgent).urgent == 1


def test_retry_after_is_whole_seconds_and_at_least_one():
    assert retry_after(Take(0, 0, 0.99), 1, 0, 100.0, 0.0) == (1, 1)
    assert retry_after(Take(0, 0, 0.0), 0, 3, 1.0, 0.0) == (1, 3)
    assert retry_after(Take(0, 0, 0.0), 0, 5, 2.0, 0.0) == (1, 3)  # 2.5 s rounds up


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rate=st.sampled_from([0.5, 1.0, 3.0, 250.0]),
    burst=st.integers(min_value=1, max_value=50),
    reserve_share=st.sampled_from([0.0, 0.2, 0.5]),
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=5, allow_nan=False),
            st.integers(min_value=0, max_value=40),
            st.integers(min_value=0, max_value=40),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_lua_and_python_give_the_same_answers(rate, burst, reserve_share, steps):
    client = redis.Redis.from_url(require_redis())
    key = f"test:admission:{uuid.uuid4().hex[:10]}"
    remote, local = RedisBuckets(client), LocalBuckets()
    now = T0
    try:
        for gap, urgent, normal in steps:
            now += gap
            reserve = reserve_share * burst
            a = remote.take(key, rate, burst, urgent, normal, reserve, now=now)
            b = local.take(key, rate, burst, urgent, normal, reserve, now=now)
            assert (a.urgent, a.normal) == (b.urgent, b.normal)
            assert a.tokens == b.tokens
            assert a.urgent + a.normal <= urgent + normal
    finally:
        client.delete(key)
        client.close()


def test_the_python_rule_never_lets_normal_events_into_the_reserve():
    for tokens in (0.0, 1.5, 2.0, 2.5, 10.0):
        got = take(tokens, 0, 100, 2.0)
        assert got.tokens >= 2.0 or got.normal == 0


# --------------------------------------------------------------------------- two processes

RATE, BURST = 50.0, 20


def _hammer(url: str, key: str, until: float, out) -> None:
    client = redis.Redis.from_url(url)
    bucket = RedisBuckets(client)
    admitted = 0
    while time.time() < until:
        got = bucket.take(key, RATE, BURST, 1, 4, 0.0)  # Redis' own clock
        admitted += got.urgent + got.normal
    out.put(admitted)


def test_two_processes_sharing_a_redis_bucket_never_admit_more_than_rate_t_plus_burst():
    url = require_redis()
    client = redis.Redis.from_url(url)
    key = f"test:admission:{uuid.uuid4().hex[:10]}"
    seconds, started = client.time()
    start = seconds + started / 1e6
    context = multiprocessing.get_context("fork")  # the child needs only Redis
    out = context.Queue()
    until = time.time() + 1.5
    procs = [context.Process(target=_hammer, args=(url, key, until, out)) for _ in range(2)]
    for p in procs:
        p.start()
    counts = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    seconds, micros = client.time()
    elapsed = seconds + micros / 1e6 - start
    client.delete(key)
    client.close()
    assert all(n > 0 for n in counts), counts  # both really took part
    # Measured on Redis' clock from before the first take to after the last one.
    assert sum(counts) <= RATE * elapsed + BURST
    assert sum(counts) >= BURST  # and the limit is not trivially met by admitting nothing


@pytest.mark.smoke
def test_threads_sharing_the_local_bucket_never_get_more_than_the_burst():
    import threading

    local = LocalBuckets()
    got: list[int] = []
    lock = threading.Lock()

    def hammer():
        for _ in range(200):
            taken = local.take("k", 0.0001, 50, 0, 1, 0.0, now=T0)
            with lock:
                got.append(taken.normal)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(got) == 50


def test_a_very_slow_rate_still_works_on_redis(key):
    client = redis.Redis.from_url(require_redis())
    bucket = RedisBuckets(client)
    got = bucket.take(key, 1e-300, 3, 0, 5, 0.0)  # burst / rate: 3e300 s, no integer
    assert got.normal == 3
    assert 0 < client.ttl(key) <= 86400
    client.delete(key)
    client.close()
