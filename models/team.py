"""Team view: interventions at the manager's level, from a scores frame (pure; the HR report and
the dashboard call it).

Two rules, per manager and as-of day:
- **shared driver**: at least `k` of the manager's reps are at risk (band in `at_risk_bands`) with
  the same strongest actionable driver group -> `team_building`;
- **team far above the org**: the team has at least `min_team` reps scored, at least 2 of them in the
  high band, and its high-band rate is at least `rate_ratio` x the organisation's rate on that day
  (and `min_gap` above it) -> `manager_coaching`.
"""

from __future__ import annotations

import pandas as pd

from models import i18n

COLUMNS = [
    "manager_id",
    "as_of",
    "suggestion",
    "reason",
    "reason_en",
    "reason_zh",
    "group",
    "n_reps",
    "team_size",
    "team_high_rate",
    "org_high_rate",
    "rep_ids",
]


def top_group(row) -> str | None:
    """The strongest actionable driver group of a scores row (`driver_groups`, else `drivers`)."""
    from models.drivers import group_actionable

    groups = row.get("driver_groups") if hasattr(row, "get") else None
    if isinstance(groups, list | tuple) and len(groups):
        for d in groups:
            if d.get("actionable", group_actionable(d.get("group", ""))):
                return d.get("group")
        return None
    drivers = row.get("drivers") if hasattr(row, "get") else None
    if isinstance(drivers, list | tuple):
        for d in drivers:
            g = d.get("group")
            if g and group_actionable(g):
                return g
    return None


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def team_suggestions(
    scores: pd.DataFrame,
    *,
    k: int = 3,
    rate_ratio: float = 2.0,
    min_gap: float = 0.15,
    min_team: int = 4,
    at_risk_bands=("high",),
) -> pd.DataFrame:
    """Manager-level suggestions (`team_building`, `manager_coaching`) with reasons in both languages."""
    if scores is None or scores.empty:
        return pd.DataFrame(columns=COLUMNS)
    missing = [c for c in ("manager_id", "risk_band") if c not in scores]
    if missing:
        raise ValueError(f"the scores frame lacks column(s) {missing}")
    df = scores.copy()
    if "as_of" not in df:
        df["as_of"] = pd.NaT
    df["_top"] = [top_group(r) for r in df.to_dict("records")]
    df["_risk"] = df["risk_band"].isin(list(at_risk_bands))
    df["_high"] = df["risk_band"] == "high"
    rows = []
    for as_of, day in df.groupby("as_of", dropna=False, sort=True):
        org_rate = float(day["_high"].mean())
        for mgr, team in day.groupby("manager_id", sort=True):
            size = len(team)
            rate = float(team["_high"].mean())
            at = team[team["_risk"] & team["_top"].notna()]
            for g, sub in at.groupby("_top", sort=True):
                if len(sub) >= k:
                    title = {lang: i18n.group_title(g, lang) for lang in i18n.LANGUAGES}
                    rows.append(
                        {
                            "manager_id": mgr,
                            "as_of": as_of,
                            "suggestion": "team_building",
                            "reason_en": i18n.text(
                                "en", "team.shared_driver", n=len(sub), size=size, group=title["en"]
                            ),
                            "reason_zh": i18n.text(
                                "zh-CN", "team.shared_driver", n=len(sub), size=size, group=title["zh-CN"]
                            ),
                            "group": g,
                            "n_reps": len(sub),
                            "team_size": size,
                            "team_high_rate": rate,
                            "org_high_rate": org_rate,
                            "rep_ids": sorted(str(r) for r in sub["rep_id"]) if "rep_id" in sub else [],
                        }
                    )
            n_high = int(team["_high"].sum())
            if (
                size >= min_team
                and n_high >= 2
                and rate >= rate_ratio * org_rate
                and rate - org_rate >= min_gap
            ):
                params = {"rate": _pct(rate), "org_rate": _pct(org_rate)}
                rows.append(
                    {
                        "manager_id": mgr,
                        "as_of": as_of,
                        "suggestion": "manager_coaching",
                        "reason_en": i18n.text("en", "team.high_rate", **params),
                        "reason_zh": i18n.text("zh-CN", "team.high_rate", **params),
                        "group": None,
                        "n_reps": n_high,
                        "team_size": size,
                        "team_high_rate": rate,
                        "org_high_rate": org_rate,
                        "rep_ids": sorted(str(r) for r in team.loc[team["_high"], "rep_id"])
                        if "rep_id" in team
                        else [],
                    }
                )
    out = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "reason"])
    out.insert(3, "reason", out["reason_en"])
    return out[COLUMNS].reset_index(drop=True)
