"""The breaker engine: pure Python, no Django (tests/breakers/test_engine_isolation.py).

* `machine`      the state machine: `Breaker`, its config, states, outcomes, and the
                 `StateStore` protocol every breaker is handed (there is no default store)
* `stores`       `InProcessStore`: the embedded default and the reference rules (stdlib only)
* `redis_store`  `RedisStore`: the same rules as one Lua script per operation (redis-py);
                 import it from its module, so that this package never needs redis-py
* `lua/`         the script

Import order is one way: machine <- stores <- redis_store.
"""

from .machine import (
    OPERATOR_STATES,
    Batch,
    Breaker,
    BreakerConfig,
    BreakerOpen,
    HalfOpenPolicy,
    Listener,
    Outcome,
    Permit,
    ProbeResult,
    Snapshot,
    State,
    StateStore,
    Transition,
    WindowType,
)
from .stores import InProcessStore, make_node_id

__all__ = [
    "OPERATOR_STATES",
    "Batch",
    "Breaker",
    "BreakerConfig",
    "BreakerOpen",
    "HalfOpenPolicy",
    "InProcessStore",
    "Listener",
    "Outcome",
    "Permit",
    "ProbeResult",
    "Snapshot",
    "State",
    "StateStore",
    "Transition",
    "WindowType",
    "make_node_id",
]
