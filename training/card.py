"""The model card: markdown pages logged with every training run and shown in the quarterly report,
`model_card.md` in English and `model_card.zh-CN.md` in Chinese, the same facts from the same figures."""

from __future__ import annotations

import pandas as pd

from models.i18n import (
    DEFAULT_LANGUAGE,
    Message,
    format_count,
    format_fixed,
    group_title,
    has,
    text,
)
from models.spec import PEER_PREFIX
from training.evaluate import comparison_table, to_markdown

# Below these the held-out figures are too noisy to trust; the list is still produced, with the caveat.
THIN_REPS = 50
THIN_TRAIN_PERIODS = 3
THIN_TEST_MISSES = 20


def data_caveats(split: dict, lang: str = DEFAULT_LANGUAGE) -> list[str]:
    """Plain-language warnings when the data is too thin for a trustworthy model (pure; from the split)."""
    out = []
    n = format_count
    reps, periods, misses = (
        split.get("reps"),
        split.get("train_periods"),
        split.get("test_missed_rep_periods"),
    )
    if reps is not None and reps < THIN_REPS:
        out.append(text(lang, "card.caveat.reps", reps=n(reps), min=n(THIN_REPS)))
    if periods is not None and periods < THIN_TRAIN_PERIODS:
        out.append(text(lang, "card.caveat.periods", periods=n(periods), min=n(THIN_TRAIN_PERIODS)))
    if misses is not None and misses < THIN_TEST_MISSES:
        out.append(text(lang, "card.caveat.misses", misses=n(misses), min=n(THIN_TEST_MISSES)))
    if out:
        out.append(text(lang, "card.caveat.starting_point"))
    return out


def _definitions_line(spec, lang: str = DEFAULT_LANGUAGE) -> str:
    """Which feature definitions the model learnt on: a later release that computes a feature
    differently has another fingerprint, and `repradar models` / scoring then say "retrain"."""
    from features.registry import FEATURES_REVISION

    sha = (getattr(spec, "meta", None) or {}).get("features_sha256")
    if not sha:
        return "- " + text(lang, "card.data.no_definitions")
    return "- " + text(lang, "card.data.definitions", sha=sha, revision=FEATURES_REVISION)


def build_note(note: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A feature-build note in `lang`: the build writes Messages (features/build.py); a plain-text note
    (one no message covers yet) as it was written, and in another language saying it is the original."""
    if isinstance(note, Message):
        return note.in_lang(lang)
    if lang == DEFAULT_LANGUAGE:
        return note
    return text(lang, "card.build_note.as_written", note=note)


def _table(table: pd.DataFrame, lang: str, first: str = "report.col.model") -> str:
    """A figures table (training.evaluate.comparison_table's shape): in English as `to_markdown` writes
    it; in Chinese with the report's column and model names and its numbers (reporting.report)."""
    if lang == DEFAULT_LANGUAGE:
        return to_markdown(table)
    heads = {
        "n": "report.col.snapshots",
        "n_missed": "report.col.missed",
        "top10_precision": "report.col.top10",
    }
    cols = list(table.columns)
    out = [
        "| "
        + " | ".join(text(lang, k) for k in [first, *(heads.get(c, f"report.col.{c}") for c in cols)])
        + " |",
        "|---|" + "---|" * len(cols),
    ]
    for name, r in table.iterrows():
        key = f"report.model.baseline.{name}"
        cells = [text(lang, key) if first == "report.col.model" and has(lang, key) else str(name)]
        cells += [
            format_count(r[c]) if c in ("n", "n_missed") else format_fixed(float(r[c]), 3) for c in cols
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


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
    lang: str = DEFAULT_LANGUAGE,
) -> str:
    """The card in `lang` (texts under `card:` in models/messages/): names, ids, parameters and metric
    names as they are; in Chinese, counts and figures as the Chinese report writes them."""

    def t(key: str, **params) -> str:
        return text(lang, key, **params)

    n = format_count
    en = lang == DEFAULT_LANGUAGE
    lines = ["# " + t("card.title", name=model_name), ""]
    caveats = data_caveats(split, lang)
    if caveats:
        lines += ["> " + t("card.thin", caveats=t("card.sep").join(caveats)), ""]
    lines += [
        t("card.intro"),
        "",
        "## " + t("card.data.heading"),
        "- " + t("card.data.source", source=data_source),
        "- "
        + t(
            "card.data.train",
            window=split["train_window"],
            rows=n(split["train_rows"]),
            periods=n(split["train_periods"]),
        ),
        "- " + t("card.data.valid", window=split["valid_window"], rows=n(split["valid_rows"])),
        "- " + t("card.data.test", window=split["test_window"], rows=n(split["test_rows"])),
        "- " + t("card.data.dropped", n=n(split["dropped_overlap_rows"])),
        "- "
        + t(
            "card.data.fallback",
            answer=t("card.answer_yes" if history_fallback else "card.answer_no"),
            why=t("card.data.fallback_why") if history_fallback else "",
        ),
        "- " + t("card.data.fingerprint", sha=data_sha256)
        if data_sha256
        else "- " + t("card.data.no_fingerprint"),
        _definitions_line(spec, lang),
        "- "
        + t(
            "card.data.code",
            commit=git_commit or t("card.data.unknown_commit"),
            dirty=t("card.data.dirty") if git_dirty else "",
            run=run_id,
        ),
    ]
    if notes:
        lines += ["", t("card.data.build_notes")] + [f"- {build_note(x, lang)}" for x in notes]
    lines += [
        "",
        "## " + t("card.model.heading"),
        "- " + t("card.model.trees", trees=n(best_iteration)),
    ]
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
    sep = t("card.model.list_sep")
    chosen = cal["chosen"]
    lines.append(
        "- "
        + t(
            "card.model.calibrator",
            chosen=t(f"card.model.{chosen}") if has(lang, f"card.model.{chosen}") else chosen,
            n=n(len(cal["periods"])),
            periods=sep.join(
                t("card.model.calibration_period", window=w, rows=n(r))
                for w, r in zip(cal["periods"], cal["rows"], strict=True)
            ),
            candidates=sep.join(
                t(
                    "card.model.candidate",
                    name=k,
                    brier=f"{cal[k]['brier']:.4f}",
                    log_loss=f"{cal[k]['log_loss']:.4f}",
                )
                for k in ("platt", "isotonic")
            ),
        )
    )
    mono = [f for f in spec.feature_names if spec.monotone.get(f, 0) != 0]
    # the model's inputs are the features and their peer medians, counted as `train` says them
    peers = sum(f.startswith(PEER_PREFIX) for f in spec.feature_names)
    lines.append(
        "- "
        + t(
            "card.model.features",
            n=n(len(spec.feature_names)),
            features=n(len(spec.feature_names) - peers),
            peers=n(peers),
            monotone=n(len(mono)),
            names=", ".join(f"`{f}` ({'+' if spec.monotone[f] > 0 else '-'})" for f in mono),
        )
    )
    lines += [
        "",
        "## " + t("card.heldout.heading"),
        "",
        t("card.heldout.overall"),
        "",
        _table(comparison_table(metrics), lang),
        "",
    ]
    wk = comparison_table(metrics, scope="week", group=str(week))
    if not wk.empty:
        lines += [t("card.heldout.week", week=week), "", _table(wk, lang), ""]
    if has_oracle:
        lines += [
            t("card.heldout.oracle"),
            "",
            _table(comparison_table(metrics, rows="oracle_rows"), lang),
            "",
        ]
    seg = metrics[
        (metrics["rows"] == "heldout") & (metrics["scope"] == "segment") & (metrics["model"] == "model")
    ]
    if not seg.empty:
        per = seg.set_index("group")[["n", "n_missed", "auc", "brier", "ece"]]
        lines += [
            t("card.heldout.segments"),
            "",
            to_markdown(per).replace("| model |", "| segment |")
            if en
            else _table(per, lang, "report.by.segment"),
            "",
        ]
    lines += [
        t("card.heldout.plots"),
        "",
        "## " + t("card.features.heading"),
        "",
        "| " + " | ".join(t(f"card.features.{c}") for c in ("feature", "group", "unit", "monotone")) + " |",
        "|---|---|---|---|",
    ]
    for f in spec.feature_names:
        group, unit = spec.groups.get(f, "other"), spec.units.get(f, "")
        if not en:  # the dashboard's group titles; a unit the registry does not know as it is
            group = group_title(group, lang)
            unit = t(f"card.unit.{unit}") if unit and has(lang, f"card.unit.{unit}") else unit
        lines.append(f"| `{f}` | {group} | {unit} | {spec.monotone.get(f, 0):+d} |")
    lines += ["", "## " + t("card.limits.heading")]
    limits = ["history", "periods", "snapshots", "drivers", "playbook", "attributes"]
    lines += ["- " + t(f"card.limits.{k}") for k in limits + (["fallback"] if history_fallback else [])]
    return "\n".join(lines) + "\n"
