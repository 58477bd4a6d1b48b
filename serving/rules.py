"""Business rules of the service as pure functions: who may see which reps, and which alerts are shown.

Nothing here touches the database or the request; the routers feed these with plain values, and
tests/serving/test_rules.py checks them directly.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ROLES = ("manager", "hr", "data_scientist", "admin")
BANDS = ("high", "medium", "low")
SORT_KEYS = ("risk", "attainment_to_date", "risk_change", "rep_id", "name")


class OrgChart:
    """The reporting lines (rep -> manager) with a child index; a manager need not be a rep."""

    def __init__(self, edges: Mapping[str, str]):
        self.edges = dict(edges)
        children: dict[str, list[str]] = defaultdict(list)
        for rep, manager in self.edges.items():
            children[manager].append(rep)
        self._children = dict(children)

    def subtree(self, manager_id: str) -> frozenset[str]:
        """Every rep whose chain of managers reaches `manager_id` (the manager excluded); cycle-safe."""
        seen: set[str] = set()
        stack = [manager_id]
        while stack:
            for rep in self._children.get(stack.pop(), ()):
                if rep not in seen and rep != manager_id:
                    seen.add(rep)
                    stack.append(rep)
        return frozenset(seen)


@dataclass(frozen=True)
class Scope:
    """The reps a caller may see: everyone, or an explicit set."""

    everyone: bool
    reps: frozenset[str] = frozenset()

    def __contains__(self, rep_id: object) -> bool:
        return self.everyone or rep_id in self.reps


NOBODY = Scope(False)
EVERYONE = Scope(True)


def resolve_scope(
    roles: Iterable[str], own_manager_id: str | None, chart: OrgChart, requested_manager_id: str | None = None
) -> Scope:
    """The reps a caller may see, optionally narrowed to one manager's subtree.

    HR sees everyone. A manager sees their reporting subtree (managers of managers included), and may
    narrow it to a manager inside it; a manager outside it gives an empty scope, exactly as one that
    does not exist. Any other role sees no rep.
    """
    roles = set(roles)
    if "hr" in roles:
        return EVERYONE if requested_manager_id is None else Scope(False, chart.subtree(requested_manager_id))
    if "manager" in roles and own_manager_id:
        own = chart.subtree(own_manager_id)
        if requested_manager_id is None or requested_manager_id == own_manager_id:
            return Scope(False, own)
        if may_narrow_to(roles, own_manager_id, chart, requested_manager_id):
            return Scope(False, chart.subtree(requested_manager_id) & own)
    return NOBODY


def may_narrow_to(roles: Iterable[str], own_manager_id: str | None, chart: OrgChart, requested: str) -> bool:
    """Whether a caller may narrow a list to manager `requested`: HR anyone, a manager themself or a
    manager inside their subtree. The answer for anyone else is an empty list, audited as out of scope."""
    roles = set(roles)
    if "hr" in roles:
        return True
    if "manager" not in roles or not own_manager_id:
        return False
    return requested == own_manager_id or requested in chart.subtree(own_manager_id)


def may_read_reps(roles: Iterable[str]) -> bool:
    """Rep-level risk is for managers (their subtree) and HR only."""
    return bool({"manager", "hr"} & set(roles))


def may_see_names(roles: Iterable[str]) -> bool:
    """Names of reps: HR, and managers for their own subtree; a data scientist only when also HR."""
    return bool({"manager", "hr"} & set(roles))


@dataclass(frozen=True)
class AlertSelection:
    rows: list[Any]
    in_scope: int  # rows the caller may see
    matching: int  # of those, rows passing the band filter
    budget: int  # the most rows any answer holds
    truncated: bool  # more rows matched than were returned


def select_alerts(
    rows: Sequence[Any],
    *,
    budget: int,
    bands: Iterable[str] | None = None,
    limit: int | None = None,
    sort: Literal["risk", "attainment_to_date", "risk_change", "rep_id", "name"] = "risk",
    descending: bool = True,
) -> AlertSelection:
    """Apply the alert budget: filter by band, keep the `min(limit, budget)` highest risks, then order them.

    The budget always picks the riskiest reps (ties broken by rep id), whatever the display order, so
    sorting by name never swaps a high-risk rep for a low-risk one. Ties on the sort key, and the rows
    missing it (last in either direction), are in rank order: risk descending, then rep id ascending.
    Rows need attributes `rep_id`, `risk`, `risk_band`, and those named by `sort`.
    """
    if budget < 1:
        raise ValueError("budget must be at least 1")
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}")
    wanted = set(bands) if bands else None
    matching = [r for r in rows if wanted is None or r.risk_band in wanted]
    n = budget if limit is None else min(limit, budget)
    top = sorted(matching, key=lambda r: (-r.risk, r.rep_id))[:n]

    present = [r for r in top if getattr(r, sort, None) is not None]
    missing = [r for r in top if getattr(r, sort, None) is None]
    # `top` is in rank order and the sort is stable (reverse=True too): ties on the key keep that order,
    # in either direction, as the scores file ranks them (docs/service.md)
    present.sort(key=lambda r: getattr(r, sort), reverse=descending)
    return AlertSelection(
        rows=present + missing,
        in_scope=len(rows),
        matching=len(matching),
        budget=budget,
        truncated=len(matching) > len(top),
    )


INTERVENTION_HORIZON_DAYS = 366  # an intervention may be recorded when planned, at most a year ahead
INTERVENTION_PAST_DAYS = 3653  # without a hire date, a start at most ten years back
DUPLICATE_WINDOW_S = 60  # the same entry by the same user again within this is a double submit


def intervention_date_problem(
    started_on: dt.date,
    hire_date: dt.date | None,
    today: dt.date,
    horizon_days: int = INTERVENTION_HORIZON_DAYS,
    ended_on: dt.date | None = None,
    end_date: dt.date | None = None,
) -> tuple[str, str] | None:
    """(field, why) when the dates cannot be a real intervention's, else None: the start not before the
    rep was hired (at most ten years back when the hire date is unknown), not more than `horizon_days` after today (a typo such as 2031 for 2021); the end not
    more than twice that ahead (a year-long plan may start next quarter); nor after the rep left
    (`end_date`: nobody is there to take part)."""
    if hire_date is not None and started_on < hire_date:
        return (
            "started_on",
            f"started_on {started_on.isoformat()} is before the rep was hired ({hire_date.isoformat()})",
        )
    if end_date is not None and started_on > end_date:
        return (
            "started_on",
            f"started_on {started_on.isoformat()} is after the rep left ({end_date.isoformat()})",
        )
    earliest = today - dt.timedelta(days=INTERVENTION_PAST_DAYS)
    if hire_date is None and started_on < earliest:
        # without a hire date, a start ten years back is a typo (0001-01-01, 1924 for 2024), not a record
        return "started_on", (
            f"started_on {started_on.isoformat()} is more than {INTERVENTION_PAST_DAYS} days ago (earliest "
            f"{earliest.isoformat()}) and the rep's hire date is unknown"
        )
    latest = today + dt.timedelta(days=horizon_days)
    if started_on > latest:
        return "started_on", (
            f"started_on {started_on.isoformat()} is more than {horizon_days} days ahead (latest "
            f"{latest.isoformat()}); record an intervention once it is planned within the year"
        )
    last_end = today + dt.timedelta(days=2 * horizon_days)
    if ended_on is not None and ended_on > last_end:
        return (
            "ended_on",
            f"ended_on {ended_on.isoformat()} is more than {2 * horizon_days} days ahead (latest {last_end.isoformat()})",
        )
    return None


# Idempotency-Key (draft-ietf-httpapi-idempotency-key-header-06): how long a key is remembered. The draft
# lets the resource choose and asks it to publish its expiration policy; a day covers any client retry.
IDEMPOTENCY_KEY_HOURS = 24
IDEMPOTENCY_KEY_MAX = 255
# visible ASCII but the quote and the backslash: a Structured Field String needs no escapes then
IDEMPOTENCY_KEY_PATTERN = r'^(?:"[!#-\[\]-~]{1,255}"|[!#-\[\]-~]{1,255})$'


def idempotency_key(raw: str) -> str:
    """The key of an `Idempotency-Key` header: the draft's form is a quoted Structured Field String
    (`"8e03978e-..."`); the bare value many clients send is taken as the same key. ValueError when it is
    empty, too long or holds characters outside visible ASCII, a quote or a backslash."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value:
        raise ValueError("the Idempotency-Key is empty; send a unique value, e.g. a UUID")
    if len(value) > IDEMPOTENCY_KEY_MAX:
        raise ValueError(f"the Idempotency-Key is longer than {IDEMPOTENCY_KEY_MAX} characters")
    if any(not ("!" <= ch <= "~") or ch in '"\\' for ch in value):
        raise ValueError(
            "the Idempotency-Key may hold visible ASCII characters only (no spaces, quotes or backslashes)"
        )
    return value


def request_fingerprint(rep_id: str, body: Mapping[str, Any]) -> str:
    """SHA-256 of what a request asks for (the rep and its body as validated, so that key order, spacing
    and defaults do not matter): the same key with another fingerprint is another request."""
    import hashlib
    import json

    canonical = json.dumps({"rep_id": rep_id, "body": dict(body)}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


EXPORT_PAGE = 100  # entries per page of the JSON export when no limit is given


def export_query_problem(
    started_from: dt.date | None,
    started_to: dt.date | None,
    fmt: str,
    limit: int | None,
    offset: int | None,
) -> tuple[str, str] | None:
    """(query parameter, why) when an intervention export's filters cannot be meant as given, else None:
    a date range that ends before it starts, or paging asked of the CSV form (which holds every match)."""
    if started_from is not None and started_to is not None and started_to < started_from:
        return "started_to", (
            f"started_to {started_to.isoformat()} is before started_from {started_from.isoformat()}; "
            "both days are inclusive"
        )
    if fmt == "csv" and (limit is not None or offset is not None):
        which = "limit" if limit is not None else "offset"
        return which, "limit and offset page the JSON form (format=json); the CSV holds every matching entry"
    return None


def unknown_manager_warning(manager_id: str | None, directory_reps: int, direct_reports: int) -> str | None:
    """Why a new manager's id is likely a typo, or None: the rep directory is filled (`directory_reps`) but
    no rep reports to the id (`direct_reports`). A manager of managers has managers reporting to them, so
    one level is enough; before the first batch fills the directory nothing can be said."""
    if not manager_id or directory_reps == 0 or direct_reports > 0:
        return None
    return (
        f"no rep in the service's rep directory reports to {manager_id!r}; check the id against "
        "reps.manager_id (the user sees nobody until one does)"
    )
