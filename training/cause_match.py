"""Cause match: do the playbook's suggestions answer the simulator's hidden causes?

Among held-out reps who missed target and have a dominant cause (`truth/rep_periods.parquet`),
the share whose top-two interventions include one that answers the cause
(`simulator.truth.CAUSE_TO_INTERVENTIONS`), at weeks 3, 6 and 9 of the period, overall and per
cause, next to two baselines:
- `random`: two distinct catalog ids drawn at random (the exact expected share, not a draw);
- `frequent`: the same two ids for everybody, the two the playbook puts in its top two most often
  over all scored rows of that week (what "always suggest the usual" would give).
Rows `clear` and `mixed` split the misses by how far the dominant cause leads: `clear` when its
contribution is at least CLEAR_RATIO times the next cause's (`contrib_<cause>` in the truth), `mixed`
otherwise, where two causes of similar size compete for the top two.
Logged to MLflow with each training run when the data folder has a simulator `truth/`.
"""

from __future__ import annotations

from math import comb
from pathlib import Path

import numpy as np
import pandas as pd

from reporting.fairness import wilson_interval

WEEKS = (3, 6, 9)
TOP = 2
CLEAR_RATIO = 2.0  # a dominant cause at least this many times the next one is a clear cause


def load_truth(data_dir) -> pd.DataFrame | None:
    """truth/rep_periods.parquet beside the data, or None (real data has no truth)."""
    path = Path(data_dir) / "truth" / "rep_periods.parquet"
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    contrib = [c for c in names if c.startswith("contrib_")]
    t = pd.read_parquet(path, columns=["rep_id", "period_start", "missed", "dominant_cause", *contrib])
    if len(contrib) >= 2:
        c = np.sort(t[contrib].to_numpy(dtype=float), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t["cause_lead"] = np.where(c[:, -2] > 0, c[:, -1] / c[:, -2], np.inf)
        t = t.drop(columns=contrib)
    t["rep_id"] = t["rep_id"].astype(str)
    t["period_start"] = pd.to_datetime(t["period_start"]).astype("datetime64[ns]")
    return t


def answers(cause: str) -> tuple[str, ...]:
    from simulator.truth import CAUSE_TO_INTERVENTIONS

    return tuple(CAUSE_TO_INTERVENTIONS.get(cause, ()))


def random_pair_share(n_answering: int, n_ids: int, top: int = TOP) -> float:
    """P(at least one of `top` distinct random ids out of n_ids is among n_answering)."""
    if n_answering <= 0:
        return 0.0
    return 1.0 - comb(n_ids - n_answering, top) / comb(n_ids, top)


def match_rows(
    frame: pd.DataFrame, interventions: list[list[str]], truth: pd.DataFrame, weeks=WEEKS
) -> pd.DataFrame:
    """One row per scored snapshot of a rep who missed with a dominant cause, at the given weeks.

    `frame` holds rep_id, period_start, week_of_period (the snapshots); `interventions` the
    suggested ids per frame row, best first. Adds `cause`, `top` (first two ids), `hit`, `row`
    (the position in `frame`) and, when the truth has it, `cause_lead` (the dominant cause's
    contribution over the next one's).
    """
    df = pd.DataFrame(
        {
            "rep_id": frame["rep_id"].astype(str).to_numpy(),
            "period_start": pd.to_datetime(frame["period_start"]).astype("datetime64[ns]").to_numpy(),
            "week": frame["week_of_period"].to_numpy(),
            "top": [list(x)[:TOP] for x in interventions],
            "row": np.arange(len(frame)),
        }
    )
    df = df[df["week"].isin(list(weeks))]
    t = truth[truth["missed"].fillna(False).astype(bool) & truth["dominant_cause"].notna()]
    t = t[t["dominant_cause"].astype(str) != ""]
    keep = ["rep_id", "period_start", "dominant_cause"] + (["cause_lead"] if "cause_lead" in t else [])
    df = df.merge(t[keep], on=["rep_id", "period_start"], how="inner")
    df = df.rename(columns={"dominant_cause": "cause"})
    df["hit"] = [bool(set(top) & set(answers(c))) for top, c in zip(df["top"], df["cause"], strict=True)]
    return df.reset_index(drop=True)


def summarise(rows: pd.DataFrame, all_tops: pd.DataFrame, catalog: tuple[str, ...]) -> pd.DataFrame:
    """Shares per (week, cause) and per week overall: playbook (with a 95% Wilson interval), random,
    frequent, with counts.

    `all_tops` holds `week` and `top` for every scored row (the frequent baseline's pool).
    """
    out = []
    for week in sorted(rows["week"].unique()):
        pool = all_tops[all_tops["week"] == week]["top"]
        counts = pd.Series([i for t in pool for i in t]).value_counts()
        frequent = sorted(counts.index, key=lambda i: (-counts[i], i))[:TOP] if len(counts) else []
        wk = rows[rows["week"] == week]
        split = []
        if "cause_lead" in wk:
            clear = wk["cause_lead"].to_numpy(dtype=float) >= CLEAR_RATIO
            split = [("clear", wk[clear]), ("mixed", wk[~clear])]
        for cause, sub in [("all", wk), *split, *sorted(wk.groupby("cause"))]:
            rnd = (
                np.mean([random_pair_share(len(answers(c)), len(catalog)) for c in sub["cause"]])
                if len(sub)
                else np.nan
            )
            freq = (
                np.mean([bool(set(frequent) & set(answers(c))) for c in sub["cause"]]) if len(sub) else np.nan
            )
            # one row per rep and held-out period (one snapshot a week): rows are (nearly) independent
            # reps, so a Wilson interval fits
            low, high = wilson_interval(int(sub["hit"].sum()), len(sub))
            out.append(
                {
                    "week": int(week),
                    "cause": cause,
                    "n": len(sub),
                    "playbook": float(sub["hit"].mean()) if len(sub) else np.nan,
                    "playbook_low": low,
                    "playbook_high": high,
                    "random": float(rnd),
                    "frequent": float(freq),
                    "frequent_ids": ",".join(frequent),
                }
            )
    return pd.DataFrame(out)


def cause_match(
    frame: pd.DataFrame, model, truth: pd.DataFrame, *, playbook=None, settings=None, weeks=WEEKS
) -> pd.DataFrame:
    """Score `frame` (snapshots with features) with `model` and its playbook; the summary of `summarise`.

    Every snapshot of the weeks asked is scored (the playbook compares reps with their peers of the
    same day, so whole days are scored together), then the missed reps with a cause are kept.
    """
    from features.contract import INTERVENTION_IDS

    sub = frame[frame["week_of_period"].isin(list(weeks))].reset_index(drop=True)
    if sub.empty:
        return pd.DataFrame(
            columns=["week", "cause", "n", "playbook", "playbook_low", "playbook_high", "random", "frequent"]
            + ["frequent_ids"]
        )
    band_high = getattr(settings, "band_high", None)
    pred = model.predict_frame(
        sub, explain=True, actions=True, playbook=playbook, band_high=band_high, recourse=False
    )
    ids = list(pred["interventions"])
    rows = match_rows(sub, ids, truth, weeks)
    all_tops = pd.DataFrame({"week": sub["week_of_period"].to_numpy(), "top": [list(x)[:TOP] for x in ids]})
    return summarise(rows, all_tops, tuple(INTERVENTION_IDS))


def metrics(summary: pd.DataFrame) -> dict[str, float]:
    """Flat MLflow metrics: cause_match_week3, cause_match_week3_random, ..._skill, ..."""
    out = {}
    for _, r in summary.iterrows():
        stem = f"cause_match_week{r['week']}" + ("" if r["cause"] == "all" else f"_{r['cause']}")
        if pd.notna(r["playbook"]):
            out[stem] = float(r["playbook"])
        if r["cause"] == "all":
            out[stem + "_random"] = float(r["random"])
            out[stem + "_frequent"] = float(r["frequent"])
            if pd.notna(r.get("playbook_low")):
                out[stem + "_low"] = float(r["playbook_low"])
                out[stem + "_high"] = float(r["playbook_high"])
        if r["cause"] in ("all", "clear", "mixed"):
            out[stem + "_n"] = float(r["n"])
    return out


def table(summary: pd.DataFrame) -> str:
    """A Markdown table: week x cause, playbook share (n, 95% Wilson interval over reps) with both baselines."""
    lines = [
        "| week | cause | n | playbook [95% interval] | random two | two most frequent |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        share = "n/a" if pd.isna(r["playbook"]) else f"{r['playbook']:.2f}"
        if pd.notna(r["playbook"]) and pd.notna(r.get("playbook_low")):
            share += f" [{r['playbook_low']:.2f}, {r['playbook_high']:.2f}]"
        lines.append(
            f"| {r['week']} | {r['cause']} | {r['n']} | {share} | {r['random']:.2f} | {r['frequent']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def log_run(data_dir, test: pd.DataFrame, model, settings, out_dir) -> pd.DataFrame | None:
    """With a simulator `truth/` beside the data: cause match on the held-out rows, logged to the
    active MLflow run (metrics `cause_match_week<k>...`) and written to out_dir/cause_match.csv and .md.
    Returns the summary, or None without truth (real data)."""
    truth = load_truth(data_dir)
    if truth is None or test.empty:
        return None
    from repradar.progress import step

    step("checking the suggestions against the simulator's known causes of misses")
    summary = cause_match(test, model, truth, settings=settings)
    if summary.empty:
        return None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_dir / "cause_match.csv", index=False)
    (out_dir / "cause_match.md").write_text(table(summary))
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_metrics(metrics(summary))
    return summary
