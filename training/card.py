"""The model card: a markdown page logged with every training run (and shown by the dashboard)."""

from __future__ import annotations

import pandas as pd

from training.evaluate import comparison_table, to_markdown

# Below these the held-out figures are too noisy to trust; the list is still produced, with the caveat.
THIN_REPS = 50
THIN_TRAIN_PERIODS = 3
THIN_TEST_MISSES = 20


def data_caveats(split: dict) -> list[str]:
    """Plain-language warnings when the data is too thin for a trustworthy model (pure; from the split)."""
    out = []
    reps, periods, misses = (
        split.get("reps"),
        split.get("train_periods"),
        split.get("test_missed_rep_periods"),
    )
    if reps is not None and reps < THIN_REPS:
        out.append(f"only {reps} reps (fewer than {THIN_REPS}): every figure rests on few people")
    if periods is not None and periods < THIN_TRAIN_PERIODS:
        out.append(
            f"only {periods} training period(s) (fewer than {THIN_TRAIN_PERIODS}): the model has seen little "
            "of how quarters differ"
        )
    if misses is not None and misses < THIN_TEST_MISSES:
        out.append(
            f"only {misses} missed rep-periods in the held-out period (fewer than {THIN_TEST_MISSES}): "
            "the held-out metrics are uncertain"
        )
    if out:
        out.append("treat the risk list as a starting point for conversations, not a ranking to act on alone")
    return out


def _definitions_line(spec) -> str:
    """Which feature definitions the model learnt on: a later release that computes a feature
    differently has another fingerprint, and `repradar models` / scoring then say "retrain"."""
    from features.registry import FEATURES_REVISION

    sha = (getattr(spec, "meta", None) or {}).get("features_sha256")
    if not sha:
        return "- feature definitions: not recorded"
    return (
        f"- feature definitions: sha256 `{sha}` (features/sql and the registry, revision {FEATURES_REVISION}); "
        "scoring with a release whose definitions differ adds a note to retrain"
    )


def render_card(
    *,
    model_name: str,
    run_id: str,
    split: dict,
    spec,
    metrics: pd.DataFrame,
    calibration: dict,
    best_iteration: int,
    params: dict,
    history_fallback: bool,
    notes: list[str],
    data_source: str,
    git_commit: str | None,
    has_oracle: bool,
    git_dirty: bool | None = None,
    data_sha256: str | None = None,
    week: int = 3,
) -> str:
    lines = [f"# Model card: {model_name}", ""]
    caveats = data_caveats(split)
    if caveats:
        lines += ["> **Thin data.** " + "; ".join(caveats) + ".", ""]
    lines += [
        "Predicts, for each sales rep and quota period, the calibrated probability that the rep misses",
        "target, from what was known before the as-of day. Explanations are TreeSHAP contributions in log-odds.",
        "",
        "## Data",
        f"- source: `{data_source}`",
        f"- training periods: {split['train_window']} ({split['train_rows']} snapshots, {split['train_periods']} period end(s))",
        f"- validation (early stopping, calibration): {split['valid_window']} ({split['valid_rows']} snapshots)",
        f"- held-out test: {split['test_window']} ({split['test_rows']} snapshots); nothing of it reached training or calibration",
        f"- rows dropped because their period overlapped a later split: {split['dropped_overlap_rows']}",
        f"- opportunity history fallback used: **{'yes' if history_fallback else 'no'}**"
        + (
            " (no opportunity_history: deals are assumed open from creation to final close date with their final amount; slipped close dates leak a little)"
            if history_fallback
            else ""
        ),
        f"- data fingerprint: sha256 `{data_sha256}` of the folder's tables (names and bytes)"
        if data_sha256
        else "- data fingerprint: none (not a local folder)",
        _definitions_line(spec),
        f"- code: git commit `{git_commit or 'unknown'}`"
        + (
            " **with uncommitted changes** (the commit alone does not reproduce this model)"
            if git_dirty
            else ""
        )
        + f"; MLflow run `{run_id}`",
    ]
    if notes:
        lines += ["", "Feature-build notes:"] + [f"- {n}" for n in notes]
    lines += ["", "## Model", f"- LightGBM, {best_iteration} trees (early-stopped on validation log-loss)"]
    keep = [
        "learning_rate",
        "num_leaves",
        "min_data_in_leaf",
        "feature_fraction",
        "bagging_fraction",
        "lambda_l2",
        "seed",
    ]
    lines.append("- " + ", ".join(f"{k}={params[k]}" for k in keep if k in params))
    cal = calibration
    lines.append(
        f"- calibrator: **{cal['chosen']}**, fitted on {len(cal['periods'])} period(s) scored out of time ("
        + ", ".join(f"{w}: {n} snapshots" for w, n in zip(cal["periods"], cal["rows"], strict=True))
        + "; every period before validation by a booster fitted only on the periods that ended before it); "
        "candidates cross-fitted on those rows by rep: "
        + ", ".join(
            f"{k} Brier {cal[k]['brier']:.4f} / log-loss {cal[k]['log_loss']:.4f}"
            for k in ("platt", "isotonic")
        )
    )
    mono = [n for n in spec.feature_names if spec.monotone.get(n, 0) != 0]
    lines.append(
        f"- {len(spec.feature_names)} features; monotone constraints on {len(mono)}: "
        + ", ".join(f"`{n}` ({'+' if spec.monotone[n] > 0 else '-'})" for n in mono)
    )
    lines += ["", "## Held-out figures", "", "Overall:", "", to_markdown(comparison_table(metrics)), ""]
    wk = comparison_table(metrics, scope="week", group=str(week))
    if not wk.empty:
        lines += [f"At week {week} of the period:", "", to_markdown(wk), ""]
    if has_oracle:
        lines += [
            "On the rows where the simulator's oracle risk is known (truth/, never used for training):",
            "",
            to_markdown(comparison_table(metrics, rows="oracle_rows")),
            "",
        ]
    seg = metrics[
        (metrics["rows"] == "heldout") & (metrics["scope"] == "segment") & (metrics["model"] == "model")
    ]
    if not seg.empty:
        lines += [
            "Per segment (model):",
            "",
            to_markdown(seg.set_index("group")[["n", "n_missed", "auc", "brier", "ece"]]).replace(
                "| model |", "| segment |"
            ),
            "",
        ]
    lines += [
        "The lead-time curve (plots/lead_time.png) and calibration curve (plots/calibration.png) are logged with the run.",
        "",
        "## Features",
        "",
        "| feature | group | unit | monotone |",
        "|---|---|---|---|",
    ]
    for n in spec.feature_names:
        lines.append(
            f"| `{n}` | {spec.groups.get(n, 'other')} | {spec.units.get(n, '')} | {spec.monotone.get(n, 0):+d} |"
        )
    lines += [
        "",
        "## Known limits",
        "- Trained and tested on the organisation's own history; a new team, market or comp plan changes what risk looks like.",
        "- The held-out figures are from one (or a few) quota periods: expect period-to-period variation.",
        "- Snapshots of the same rep and period are correlated; figures count snapshots, not independent cases.",
        "- Drivers explain the model, not the world: a driver is a pattern associated with missing, not a proven cause.",
        "- Interventions come from the bundled playbook (`playbook.yaml`, docs/playbook.md): rules from observable "
        "signals and SHAP driver groups to catalog ids, a starting point for HR to edit, not a proven diagnosis.",
        "- Rep attributes (name and any extra reps column such as gender) are never features; a fairness audit is separate.",
    ]
    if history_fallback:
        lines.append(
            "- Trained without opportunity_history: pipeline features use final deal states, optimistic for slipped deals."
        )
    return "\n".join(lines) + "\n"
