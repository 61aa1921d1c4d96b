"""The Overview and the service page, fed by the apps without controlplane importing them.

controlplane sits below every app (DESIGN.md), so the apps register providers here from their
AppConfig.ready():

- an overview provider takes all services and returns ``{service_id: {column_key: Cell}}``
  in a fixed number of queries, whatever the number of services (the Overview's query count
  is pinned in tests/controlplane/test_overview.py);
- a section provider takes one service and returns the sections it adds to the service page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controlplane.models import Service

OK, WARN, BAD = 0, 1, 2
LEVEL_CSS = {OK: "", WARN: "warn", BAD: "bad"}


@dataclass(frozen=True)
class Cell:
    """One figure on the Overview: what to show, where it links, and how bad it is."""

    text: str
    href: str = ""
    level: int = OK
    title: str = ""
    score: float = 0.0  # orders rows of the same level: higher is worse
    items: Sequence[Cell] = ()  # several links in one cell (one per SLO, per breaker)
    spark: str = ""  # a small SVG (already escaped by whoever drew it)

    @property
    def css(self) -> str:
        return LEVEL_CSS[self.level]


@dataclass(frozen=True)
class Column:
    key: str
    heading: str
    help: str = ""


@dataclass(frozen=True)
class Section:
    """A block of the service page: a heading, a template and its context."""

    title: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100


OverviewProvider = Callable[[Sequence[Service], datetime], dict[int, dict[str, Cell]]]
SectionProvider = Callable[[Service, datetime, Any], list[Section]]


@dataclass(frozen=True)
class _Registered:
    columns: tuple[Column, ...]
    provider: OverviewProvider
    order: int


_overview: dict[str, _Registered] = {}
_sections: dict[str, SectionProvider] = {}


def register_overview_provider(
    name: str, columns: Sequence[Column], provider: OverviewProvider, *, order: int = 100
) -> None:
    """Adds ``columns`` to the Overview; registering the same name again replaces it."""
    _overview[name] = _Registered(tuple(columns), provider, order)


def register_section_provider(name: str, provider: SectionProvider) -> None:
    """Adds sections to the service page; ``provider(service, now, user)``."""
    _sections[name] = provider


@dataclass
class Row:
    service: Service
    cells: list[Cell | None]

    @property
    def level(self) -> int:
        return max((c.level for c in self.cells if c is not None), default=OK)

    @property
    def css(self) -> str:
        return LEVEL_CSS[self.level]

    @property
    def score(self) -> float:
        return sum(c.score for c in self.cells if c is not None)


def overview_rows(services: Sequence[Service], now: datetime) -> tuple[list[Column], list[Row]]:
    """Columns and one row per service, worst first (level, then score, then slug)."""
    registered = sorted(_overview.values(), key=lambda r: r.order)
    columns = [c for r in registered for c in r.columns]
    figures: dict[str, dict[int, dict[str, Cell]]] = {}
    for r in registered:
        found = r.provider(services, now) if services else {}
        for column in r.columns:
            figures[column.key] = {sid: cells.get(column.key) for sid, cells in found.items()}
    rows = [Row(service=s, cells=[figures[c.key].get(s.pk) for c in columns]) for s in services]
    rows.sort(key=lambda r: (-r.level, -r.score, r.service.slug))
    return columns, rows


def service_sections(service: Service, now: datetime, user: Any) -> list[Section]:
    sections = [s for provider in _sections.values() for s in provider(service, now, user)]
    return sorted(sections, key=lambda s: s.order)
