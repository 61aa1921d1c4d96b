"""The maths of error budgets: pure Python, standard library only, no Django
(tests/budgets/test_maths_isolation.py).

* `budget`    validation (`InvalidInput`), the occurrences method, time to exhaustion, pacing,
              the timeslices method
* `windows`   SLO windows (`rolling:30d`, `calendar:month`, ...), their bounds and lengths,
              ledger range planning
* `burn`      multiwindow, multi-burn-rate alert rules (SRE workbook, ch. 5)
* `canary`    canary verdicts (Farrington-Manning score test, Fisher exact test)
* `episodes`  episodes of budget burn and of open breakers, for reports

Import order is one way: budget <- windows, burn, canary; episodes stands alone. New code
imports from the module (`from budgets.maths.budget import InvalidInput`); the names of
`budget` are re-exported here so that `from budgets.maths import InvalidInput`, the path
before the package existed, keeps working.
"""

from .budget import (
    MAX_TARGET,
    MIN_TARGET,
    BudgetStatus,
    InvalidInput,
    Pacing,
    TimesliceStatus,
    aggregate_slices,
    budget_pacing,
    budget_status,
    burn_rate,
    error_budget,
    require_utc,
    slice_is_good,
    time_to_exhaustion,
    timeslice_status,
    timeslice_tally_status,
    validate_counts,
    validate_target,
)

__all__ = [
    "MAX_TARGET",
    "MIN_TARGET",
    "BudgetStatus",
    "InvalidInput",
    "Pacing",
    "TimesliceStatus",
    "aggregate_slices",
    "budget_pacing",
    "budget_status",
    "burn_rate",
    "error_budget",
    "require_utc",
    "slice_is_good",
    "time_to_exhaustion",
    "timeslice_status",
    "timeslice_tally_status",
    "validate_counts",
    "validate_target",
]
