"""Celery tasks of the dispatcher: thin, they call the domain functions."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown

from breakers import dispatch, relay
from breakers.nodes import stop_current_node
from breakers.pool import shutdown_pool


@shared_task(name="breakers.dispatch")
def dispatch_task(event_pks: list[int]) -> int:
    return dispatch.dispatch_events(event_pks, concurrent=True)


@shared_task(name="breakers.sweep")
def sweep_task() -> dict:
    return relay.sweep().__dict__


@worker_process_shutdown.connect
@worker_shutdown.connect
def _say_goodbye(**kwargs) -> None:
    # Finish the calls in flight (each bounded by its route's timeout) and write their
    # outcomes before saying this node is gone.
    shutdown_pool()
    stop_current_node()


@shared_task(name="breakers.demo_traffic")
def demo_traffic_task() -> int:
    from breakers.demo import emit_traffic

    return emit_traffic()


@shared_task(name="breakers.recompute_thresholds")
def recompute_thresholds_task() -> int:
    from breakers.dynamic import recompute_all

    return recompute_all()


@shared_task(name="breakers.purge_shed_tallies")
def purge_shed_tallies_task() -> int:
    from breakers.admission import purge_tallies

    return purge_tallies()
