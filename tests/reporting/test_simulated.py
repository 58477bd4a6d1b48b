"""The report on simulated organisations with a known truth: the audit, drift and intervention
estimates held to the truth, then the report end to end: self-contained HTML with every section,
opened in Chromium (screenshot saved under tests/artifacts/), a PDF that renders, and the `report` /
`alerts` commands.

One module because both parts use the same session fixtures (tests/reporting/conftest.py: a
training, 1,200-rep organisations, the report); `--dist loadfile` builds them once per worker that
runs a file of them, so in two files they could be built twice.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.reporting.conftest import AS_OF, TRAIN_AS_OF, run_cli

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def _miss_prob_by_gender(org) -> pd.Series:
    rp = pd.read_parquet(org / "truth" / "rep_periods.parquet")
    reps = pd.read_parquet(org / "reps.parquet")[["rep_id", "gender"]]
    rp = rp[rp["period_start"] == pd.Timestamp("2023-10-01")].merge(reps, on="rep_id")
    return rp.groupby("gender")["miss_prob"].mean()


def test_no_attribute_effect_keeps_gender_within_the_bounds(fair_org, fair_scores, fair_tables):
    from reporting.fairness import OTHER, fairness_audit

    truth = _miss_prob_by_gender(fair_org)
    assert abs(truth["F"] - truth["M"]) < 0.04  # premise: gender carries no real effect here
    audit = fairness_audit(fair_scores, fair_tables.reps)
    g = audit.get("gender")
    sel = g.selection.set_index("group")
    assert sel.loc[["F", "M"], "judged"].all()
    assert sel.loc[["F", "M"], "ratio"].between(0.8, 1.25).all(), sel
    assert audit.flagged("gender") == []
    assert "X" in g.merged and not sel.loc[OTHER, "judged"]  # 2% of reps: merged, too small to judge


def test_quotas_biased_against_a_group_get_it_flagged(biased_org, model, settings):
    from features.io import load_folder
    from models.scoring import score_tables
    from reporting.fairness import fairness_audit, finished_outcomes

    truth = _miss_prob_by_gender(biased_org)
    assert truth["F"] - truth["M"] > 0.05  # premise: harder quotas make F reps miss more
    tables = load_folder(biased_org, validate=False)
    outcomes = finished_outcomes(tables, AS_OF)
    audit = fairness_audit(score_tables(tables, AS_OF, model, settings), tables.reps, outcomes=outcomes)
    assert audit.flagged("gender") == ["F"]
    c = [c for c in audit.callouts if c.column == "gender"][0]
    assert (c.over, c.under) == ("F", "M") and c.ratio < 0.8 and c.significant
    # the call-out says where the disparity comes from: the outcome, driven by harder quotas
    out = audit.get("gender").outcomes.set_index("group")
    assert out.loc["F", "quota_vs_segment"] > 1.1 * out.loc["M", "quota_vs_segment"]
    assert out.loc["F", "miss_rate"] > out.loc["M", "miss_rate"]
    assert "carries harder quotas" in c.source and "from the outcome" in c.source


def _shifted(tables):
    """Deals 2.5 times larger and two in three activities gone: a different world."""
    return tables.replace(
        opportunities=tables.opportunities.assign(amount=tables.opportunities["amount"] * 2.5),
        opportunity_history=tables.opportunity_history.assign(
            amount=tables.opportunity_history["amount"] * 2.5
        ),
        activities=tables.activities.iloc[::3].reset_index(drop=True),
    )


@pytest.mark.parametrize("shift", [False, True], ids=["unshifted", "shifted"])
def test_drift_warns_on_a_shifted_copy_only(shift, train_tables, model, settings, model_info):
    from features.build import build_scoring_set
    from models.scoring import scores_from_features
    from reporting.drift import drift_report

    assert model_info.reference is not None  # the training run logged it
    tables = _shifted(train_tables) if shift else train_tables
    frame = build_scoring_set(tables, TRAIN_AS_OF).frame
    scores = scores_from_features(frame, model, settings)
    r = drift_report(model_info.reference, frame, drivers=scores["drivers"])
    if shift:
        assert r.retrain_advised
        assert {"avg_won_deal_size_180d", "activities_per_week_28d"} <= set(r.drifted)
        assert r.share_on_drifted > 0.3
    else:
        assert not r.retrain_advised, r.table.head()
        assert r.table["psi"].max() < 0.1


@pytest.mark.parametrize("day", ["2023-04-08", "2023-04-15"], ids=["week2", "week3"])
def test_a_training_snapshot_day_early_in_the_period_is_not_drifted(day, train_tables, model_info):
    # The acceptance walkthrough's false alarm, on the small organisation: 2023-Q2 is a training
    # period of the model and these are its snapshot days. Pooling weeks w-1..w+1 of the reference
    # gave pace_gap PSI 1.5 (week 2) and 0.8 (week 3), "retrain advised", with nothing changed.
    from features.build import build_scoring_set
    from reporting.drift import drift_report

    frame = build_scoring_set(train_tables, pd.Timestamp(day).date()).frame
    r = drift_report(model_info.reference, frame)
    assert not r.retrain_advised, r.table.head()
    assert r.table["psi"].max() < 0.1, r.table.head()
    assert "attainment_to_date" in set(r.table["feature"]) and "pace_gap" not in set(r.table["feature"])


def test_scores_name_the_models_run_and_another_models_scores_are_refused(
    home, fair_org, fair_scores, model, model_info, settings, tmp_path
):
    from models.scoring import write_scores
    from reporting.modelinfo import load_model_info

    assert model_info.run_id and set(fair_scores["model_run_id"]) == {model_info.run_id}
    # another installation's "version 1": same name and number, another run
    other = write_scores(fair_scores.assign(model_run_id="0" * 32), tmp_path / "other.parquet")
    r = run_cli(
        home, "report", "--scores", str(other), "--data", str(fair_org), "--out", str(tmp_path / "o.html")
    )
    assert r.exit_code == 2, r.stdout + r.stderr
    assert f"MLflow run {'0' * 32}, but version 1 in this installation" in r.stderr
    assert f"is run {model_info.run_id}" in r.stderr and "REPRADAR_HOME" in r.stderr
    assert not any(tmp_path.glob("o.*"))
    # a file from before the run id was written is described, with a note that it could not be verified
    info = load_model_info(settings, "1", model=model, scores=fair_scores.drop(columns=["model_run_id"]))
    assert info.unverified and "could not be verified" in info.unverified and info.unverified in info.notes
    assert load_model_info(settings, "1", model=model, scores=fair_scores).unverified is None


def _pairs_with_truth(effects, org) -> pd.DataFrame:
    """The report's matched pairs with the simulator's true effect of each intervention."""
    truth = pd.read_parquet(org / "truth" / "interventions_applied.parquet")
    truth["rep_id"] = truth["rep_id"].astype(str)
    return effects.pairs.merge(
        truth[["rep_id", "intervention", "started_on", "delta_expected_attainment"]],
        on=["rep_id", "intervention", "started_on"],
        how="left",
    )


def _coverage_gaps(effects, org) -> pd.Series:
    """Per type with enough reps: how far the simulator's true effect on the treated lies outside the
    type's interval, as a share of the interval's width (0 inside it)."""
    pairs = _pairs_with_truth(effects, org)
    assert pairs["delta_expected_attainment"].notna().all()
    true_att = pairs.groupby("intervention")["delta_expected_attainment"].mean()
    t = effects.table[effects.table["enough"]].set_index("intervention")
    low, high = t["attainment_low"], t["attainment_high"]
    truth = true_att.reindex(t.index)
    outside = np.maximum(low - truth, 0) + np.maximum(truth - high, 0)
    return outside / (high - low)


def _types_missing_the_truth(effects, org) -> tuple[list[str], int]:
    """Types with enough reps whose interval misses the simulator's true effect on the treated, and
    how many types had enough reps."""
    gaps = _coverage_gaps(effects, org)
    return list(gaps.index[gaps > 0]), len(gaps)


def test_estimates_cover_the_true_effect_when_managers_decide_on_the_data(observed_effects, observed_org):
    # manager_view="observed": whom to help follows what the CRM shows, the estimate's assumption;
    # measured at seeds 42 / 7 / 11: 0 of 3, 0 of 3 and 0 of 2 types missed (matching alone: 0, 0, 1).
    # A 95% interval misses its truth one time in twenty, so one near miss is allowed: since reps
    # without engagement data get unknown engagement features, seed 42's pipeline_generation truth
    # (+0.022) sits 0.003 above its interval (-0.29, +0.02), 1% of the width. (What marks the informed
    # managers' estimate below as biased is its pooled shortfall, docs/report.md, more than its misses.)
    e = observed_effects
    gaps = _coverage_gaps(e, observed_org)
    assert len(gaps) >= 2
    assert (gaps > 0).sum() <= 1 and (gaps < 0.1).all(), gaps
    # and not by being vague: widths were 0.29 to 1.30 attainment at seeds 42 / 7 / 11
    t = e.table[e.table["enough"]]
    assert (t["attainment_high"] - t["attainment_low"] < 1.5).all(), t


@pytest.mark.xfail(
    strict=True,
    reason=(
        "selection on what no table shows: the simulator's managers (manager_view='informed', the "
        "default) judge risk from the true latent state, which the snapshot's data only partly show, so the "
        "comparison stays healthier than the treated's counterfactual. The bias-corrected matched estimate (docs/report.md) still runs "
        "below the truth: pooled -0.07/-0.05/-0.05 attainment at seeds 42/7/11 (matching on risk alone: "
        "-0.16/-0.11/-0.14), and its interval misses the truth for 1 of 8, 1 of 8 and 1 of 9 types (alone: "
        "3, 2, 3); here (seed 42) pipeline_generation, -0.23 against +0.03"
    ),
)
def test_estimates_cover_the_true_effect_when_managers_know_more_than_the_data(fair_effects, fair_org):
    missed, n_types = _types_missing_the_truth(fair_effects, fair_org)
    assert n_types >= 3
    assert missed == []


def test_intervention_estimates_are_reported_with_n_and_intervals(fair_report, fair_org):
    e = fair_report.data.effects
    applied = pd.read_parquet(fair_org / "truth" / "interventions_applied.parquet")
    # the report is as of AS_OF: the interventions of the quarters that ended before it
    applied = applied[applied["period_start"] < pd.Timestamp("2023-10-01")]
    assert e is not None and e.table["n_treated"].sum() > 0.8 * len(applied)
    t = e.table[e.table["enough"]]
    assert len(t) >= 3 and (t["n_treated"] >= e.min_reps).all()
    assert (t["attainment_low"] < t["attainment_effect"]).all() and (
        t["attainment_effect"] < t["attainment_high"]
    ).all()
    assert ((t["risk_treated"] - t["risk_matched"]).abs() < 0.02).all()  # matched on risk


def test_the_bias_correction_brings_the_estimate_closer_to_the_truth(fair_effects, fair_org):
    # pooled over all matched interventions: matching on risk alone runs ~0.16 low here, corrected ~0.07
    e = fair_effects
    pairs = _pairs_with_truth(e, fair_org)
    assert len(e.adjusted_for) > 50 and {"attainment_to_date", "pipeline_per_quota", "risk"} <= set(
        e.adjusted_for
    )
    alone = pairs["attainment"] - pairs["control_attainment"] - pairs["delta_expected_attainment"]
    corrected = alone - pairs["attainment_adjustment"]
    assert abs(corrected.mean()) < 0.6 * abs(alone.mean())


LATER = pd.Timedelta(days=140)  # the third quarter moved past AS_OF: 2023-07-01 becomes 2023-11-18


def _late(ids: pd.Series) -> pd.Series:
    return "late-" + ids.astype(str)


def _later_export(tables):
    """`tables` with what a later export adds after AS_OF: the third quarter's won deals (with their
    history), activities, engagement and interventions again, 140 days later (2023-11-18 to
    2024-02-17: deals closing in the running quarter and the next, interventions started since), and
    the next quarter's quotas."""
    q3 = pd.Timestamp("2023-07-01")
    o = tables.opportunities
    won = o[o["is_won"] & (o["created_date"] >= q3)]
    deals = won.assign(
        opportunity_id=_late(won["opportunity_id"]),
        created_date=won["created_date"] + LATER,
        close_date=won["close_date"] + LATER,
        amount=won["amount"] * 3,
    )
    h = tables.opportunity_history
    h = h[h["opportunity_id"].isin(set(won["opportunity_id"]))]
    h = h.assign(
        opportunity_id=_late(h["opportunity_id"]),
        changed_at=h["changed_at"] + LATER,
        close_date=h["close_date"] + LATER,
        amount=h["amount"] * 3,
    )
    a = tables.activities
    a = a[a["occurred_at"] >= q3.tz_localize("UTC")]
    a = a.assign(activity_id=_late(a["activity_id"]), occurred_at=a["occurred_at"] + LATER)
    e = tables.engagement
    e = e[e["date"] >= q3].assign(date=lambda f: f["date"] + LATER)
    iv = tables.interventions
    iv = iv[iv["started_on"] >= q3].assign(
        started_on=lambda f: f["started_on"] + LATER, ended_on=lambda f: f["ended_on"] + LATER
    )
    q = tables.quotas
    q = q[q["period_start"] == pd.Timestamp("2023-10-01")].assign(
        period_start=pd.Timestamp("2024-01-01"), period_end=pd.Timestamp("2024-03-31")
    )
    day = pd.Timestamp(AS_OF)
    assert (deals["created_date"] > day).all() and (iv["started_on"] > day).all()
    assert (a["occurred_at"] > day.tz_localize("UTC")).all() and (e["date"] > day).all()
    added = {"opportunities": deals, "opportunity_history": h, "activities": a, "engagement": e}
    added |= {"interventions": iv, "quotas": q}
    return tables.replace(
        **{n: pd.concat([getattr(tables, n), f], ignore_index=True) for n, f in added.items()}
    )


def test_what_happened_after_the_as_of_day_changes_nothing_in_the_report(
    train_tables, model, settings, model_info, tmp_path
):
    # Every figure is as of the as-of day. The small organisation's data runs to the end of 2023, past
    # AS_OF (week 7 of 2023-Q4): its running quarter's outcomes, the risk 28 days after a snapshot and
    # the interventions started since were read by the effects as if known on AS_OF, so a later export
    # of the same organisation gave another report.
    from models.scoring import score_tables
    from reporting.report import make_report

    scores = score_tables(train_tables, AS_OF, model, settings)
    later = _later_export(train_tables)
    assert len(later.interventions) > len(train_tables.interventions)
    files = [
        make_report(scores, t, settings, out=tmp_path / f"{name}.html", model_info=model_info, pdf=False)
        for name, t in (("now", train_tables), ("later", later))
    ]
    now, then = (json.loads(f.json.read_text()) for f in files)
    assert now["effects"] is not None and now["effects"]["table"], now["effects"]
    assert now["effects"] == then["effects"]
    now.pop("generated_at"), then.pop("generated_at")
    assert now == then
    html = [re.sub(r"generated [^<]*UTC", "", f.html.read_text()) for f in files]
    assert html[0] == html[1]
    # the effects come from periods finished before AS_OF and interventions started before it
    pairs = files[0].data.effects.pairs
    assert (pairs["started_on"] < pd.Timestamp(AS_OF)).all()
    assert (pairs["period_start"] < pd.Timestamp("2023-10-01")).all()


def test_html_is_self_contained_with_every_section(fair_report):
    html = fair_report.html.read_text()
    for section in ("summary", "suggestions", "fairness", "drift", "effects", "model"):
        assert f'id="{section}"' in html, section
    # nothing is loaded from elsewhere: no external src/href, no scripts, no @import or url() to the web
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html and "@import" not in html and "url(http" not in html
    assert html.count('src="data:image/svg+xml;base64,') >= 5
    assert "<b>Read with care.</b> These are observational comparisons" in html and "four-fifths rule" in html
    # the drift notes are sentences: each starts with a capital after the paragraph's full stop
    assert "The earliest training period is left out of the reference" in html
    assert "the earliest training period is left out" not in html
    assert 'id="heldout-metrics"' in html and 'id="model-card"' in html and "held-out" in html
    assert 'data-column="gender"' in html and 'data-column="region"' in html
    for by in ("manager_id", "team", "region", "segment"):
        assert f'data-by="{by}"' in html
    figures = json.loads(fair_report.json.read_text())
    assert figures["model"]["version"] == "1" and figures["summary"]["reps"] > 800
    # AS_OF lies in the held-out quarter: out of sample, no note that the risks are not a forecast
    assert figures["fitted_period_note"] is None and "fitted-period-callout" not in html
    # trained on this code's feature definitions: no note that they changed
    assert figures["feature_definitions_note"] is None and "definitions-callout" not in html
    assert {a["column"] for a in figures["fairness"]["attributes"]} == {"gender", "age_band", "region"}


def test_html_speaks_in_titles_labels_and_percentages(fair_report):
    from markupsafe import escape

    from reporting.labels import feature_label, intervention_title

    html = fair_report.html.read_text()
    data = fair_report.data
    median = re.search(r'<div class="v">([^<]*)</div><div class="k">median attainment', html).group(1)
    assert median == f"{100 * data.summary['median_attainment']:.1f}%", median
    ids = set(data.suggestions["intervention"]) | set(data.effects.table["intervention"])
    assert ids  # the fair organisation has both
    people = html[html.index('id="suggestions"') : html.index('id="fairness"')]
    people += html[html.index('id="effects"') : html.index('id="model"')]
    for i in ids:
        assert f'data-id="{i}">{escape(intervention_title(i))}</td>' in people
        assert f"<code>{i}</code>" not in people and f">{i}<" not in people
    # effects: attainment as a percentage of quota, every effect in percentage points
    effects = html[
        html.index('id="effects-table"') : html.index("</table>", html.index('id="effects-table"'))
    ]
    row = data.effects.table[data.effects.table["enough"]].iloc[0]
    assert f"{100 * row['attainment_treated']:.1f}% / {100 * row['attainment_matched']:.1f}%" in effects
    assert f"{100 * row['attainment_effect']:+.1f} pt [" in effects
    assert f"{100 * row['risk_change_effect']:+.1f} pt [" in effects
    drift = html[html.index('id="drift-table"') : html.index("</table>", html.index('id="drift-table"'))]
    first = data.drift.table["feature"].iloc[0]
    assert f'data-feature="{first}">{escape(feature_label(first))}</td>' in drift
    assert not re.search(r"<td>-?\d{4,}\.\d+</td>", drift)  # money and counts rounded for reading
    # outcomes per group: miss rates with their intervals (resampled reps) in brackets
    out = next(a.outcomes for a in data.fairness.attributes if a.outcomes is not None and len(a.outcomes))
    r = out[~out["suppressed"]].iloc[0]
    shown = f'{100 * r["miss_rate"]:.1f}% <span class="muted">[{100 * r["miss_rate_low"]:.0f}%, '
    assert shown + f"{100 * r['miss_rate_high']:.0f}%]</span>" in html
    ratios = [r for a in data.fairness.attributes for r in a.selection["ratio"].dropna()]
    assert ratios and all(
        f"<td>{x:.2f}" in html or f"<td>{x:.3f}" in html or f"<td>{x:.4f}" in html for x in ratios
    )


def test_the_report_in_chinese_leaves_no_english_sentence_and_writes_numbers_the_chinese_way(
    fair_report, fair_scores, fair_tables
):
    from html import unescape

    from markupsafe import escape

    from reporting.labels import intervention_title
    from reporting.report import html_text
    from reporting.summary import with_context
    from tests.reporting.conftest import english_runs

    data = fair_report.data
    page = html_text(data, with_context(fair_scores, fair_tables.reps), "zh-CN")
    assert page.startswith('<!DOCTYPE html>\n<html lang="zh-CN">')
    assert fair_report.html.read_text().startswith('<!DOCTYPE html>\n<html lang="en">')
    # the model card its training run wrote in Chinese (model_card.zh-CN.md), beside the English one
    assert set(data.model.cards) == {"en", "zh-CN"}
    assert (
        '<div class="card-md" id="model-card" lang="zh-CN"><h1>模型卡：' in page
        and 'id="card-note"' not in page
    )
    # what a reader sees: no chart data, no styles
    shown = re.sub(r'src="data:[^"]*"|<style>.*?</style>', "", page, flags=re.S)
    shown = unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", shown)))
    names = {
        str(v) for c in ("team", "region", "segment", "manager_id") for v in fair_tables.reps[c].dropna()
    }
    assert english_runs(shown, keep=(*names, "ROC-AUC", "PR-AUC", "Brier", "ECE")) == []
    # a version trained before the Chinese card has only model_card.md: shown as it is, marked English
    from dataclasses import replace as replaced

    old_run = replaced(data, model=replaced(data.model, cards={"en": data.model.card}))
    old_page = html_text(old_run, with_context(fair_scores, fair_tables.reps), "zh-CN")
    assert '<div class="card-md" id="model-card" lang="en"><h1>Model card: ' in old_page
    assert '<p class="note" id="card-note">模型卡按训练运行写下的英文原文显示' in old_page
    assert "重新训练即可得到中文模型卡" in old_page
    # the English report shows the English card, with no line about its language
    en = fair_report.html.read_text()
    assert '<div class="card-md" id="model-card" lang="en"><h1>Model card: ' in en and "card-note" not in en
    assert "3. 公平性审计" in shown and "其他（已合并）" in shown and "已漂移" in shown
    # numbers: a percentage as the dashboard writes it, thousands separated, points and amounts in Chinese
    s = data.summary
    assert f'<div class="v">{100 * s["median_attainment"]:.1f}%</div><div class="k">迄今完成率中位数' in page
    big = next(
        int(n)
        for a in data.fairness.attributes
        if a.outcomes is not None
        for n in a.outcomes["n_periods"]
        if n >= 1000
    )
    assert f"<td>{big:,}</td>" in page
    row = data.effects.table[data.effects.table["enough"]].iloc[0]
    assert f"{100 * row['attainment_effect']:+.1f} 个百分点 [" in page and " pt [" not in page
    assert "万</td>" in page  # an amount in the drift table, grouped by 10,000 as the dashboard's zh amounts
    for i in set(data.effects.table["intervention"]):  # the catalog's zh titles
        assert f'data-id="{i}">{escape(intervention_title(i, "zh-CN"))}</td>' in page
    # the figures are the same in both languages; the JSON says which language the HTML is in
    figures = json.loads(fair_report.json.read_text())
    assert figures["lang"] == "en" and figures["summary"] == json.loads(json.dumps(s))
    # a call-out made once from a Message reads in the language the page is rendered in
    from dataclasses import replace

    from models.i18n import Message

    note = Message("report.note.fitted_period", periods="2023-04-01..2023-06-30", version="1", window="w")
    both = replace(data, fitted_period=note)
    en_page = html_text(both, with_context(fair_scores, fair_tables.reps), "en")
    assert f'<li class="fitted-period-callout">Not a forecast: {escape(str(note))}.</li>' in en_page
    zh_page = html_text(both, with_context(fair_scores, fair_tables.reps), "zh-CN")
    assert f'<li class="fitted-period-callout">并非预测：{escape(note.in_lang("zh-CN"))}。</li>' in zh_page
    # a model trained on other feature definitions than this code computes (models.scoring.definitions_note)
    old = Message("report.note.feature_definitions", version="1", trained="01234567", current="89abcdef")
    en_page = html_text(
        replace(data, feature_definitions=old), with_context(fair_scores, fair_tables.reps), "en"
    )
    assert f'<li class="definitions-callout">The model: {escape(str(old))}.</li>' in en_page
    assert "Retrain and promote" in str(old)


def test_pdf_renders(fair_report):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (packages.apt lists it)")
    assert fair_report.pdf_error is None and fair_report.pdf is not None
    data = fair_report.pdf.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
    if shutil.which("pdftoppm"):
        out = ARTIFACTS / "report_page"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "2", str(fair_report.pdf), str(out)],
            check=True,
            timeout=60,
        )
        pages = sorted(ARTIFACTS.glob("report_page*.png"))
        assert pages and all(p.stat().st_size > 5000 for p in pages)
    if shutil.which("pdfinfo"):
        info = subprocess.run(
            ["pdfinfo", str(fair_report.pdf)], capture_output=True, text=True, check=True
        ).stdout
        assert int(re.search(r"Pages:\s+(\d+)", info).group(1)) >= 4


def test_html_opens_in_chromium_and_is_screenshotted(fair_report):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (packages.apt lists it)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    requests = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(fair_report.html.resolve().as_uri())
            page.wait_for_load_state("load")
            assert page.title().startswith("RepRadar quarterly report")
            assert page.locator("#callouts").is_visible()
            # every chart decoded to a real picture
            sizes = page.eval_on_selector_all(
                "img.chart", "imgs => imgs.map(i => [i.complete, i.naturalWidth])"
            )
            assert sizes and all(done and w > 100 for done, w in sizes)
            assert page.locator("table.fairness").count() == 3
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000
    assert all(u.startswith(("file:", "data:")) for u in requests), requests


def test_periods_the_data_does_not_cover_to_their_end_are_left_out_of_the_outcomes(
    train_tables, model, settings, model_info, tmp_path
):
    # an export taken on 2023-09-01 (its quotas already set for Q4), reported on as of AS_OF in Q4:
    # 2023-Q3 ended before AS_OF, but its last month is not in the data, so its misses are overstated
    import datetime as dt

    from markupsafe import escape

    from features.pit import truncate_at
    from models.scoring import score_tables
    from reporting.fairness import finished_outcomes
    from reporting.report import make_report

    early = truncate_at(train_tables, dt.date(2023, 9, 1))
    q = train_tables.quotas
    early = early.replace(quotas=q[q["rep_id"].isin(early.reps["rep_id"])].reset_index(drop=True))
    scores = score_tables(early, AS_OF, model, settings)
    done = make_report(scores, early, settings, out=tmp_path / "q.html", model_info=model_info, pdf=False)
    figures = json.loads(done.json.read_text())
    notes = [n for n in figures["fairness"]["notes"] if "left out of the outcomes" in n]
    assert len(notes) == 1 and "1 quota period(s)" in notes[0] and "2023-07-01..2023-09-30" in notes[0]
    assert "the data's latest event is on 2023-08-31" in notes[0]
    assert str(escape(notes[0])) in done.html.read_text()  # in the fairness section too
    # the outcomes are those of the periods the data covers: those an as-of day right after it counts
    covered = finished_outcomes(early, dt.date(2023, 9, 1))
    assert len(covered) and (pd.to_datetime(covered["period_end"]) < pd.Timestamp("2023-09-01")).all()
    gender = next(a for a in figures["fairness"]["attributes"] if a["column"] == "gender")
    assert sum(o["n_periods"] for o in gender["outcomes"]) == len(covered)


def test_a_period_ending_on_a_quiet_weekend_before_the_as_of_day_is_still_finished(
    train_tables, model, settings, model_info, tmp_path
):
    # 2023-Q3 ends on Saturday 2023-09-30; an organisation quiet that weekend, reported on as of Monday
    # 2023-10-02 from a folder that runs to the end of the year: read as known on the as-of day, its
    # latest event is on Friday, but the folder covers Q3's end, so Q3's outcomes count
    import datetime as dt

    from models.scoring import score_tables
    from reporting.fairness import finished_outcomes
    from reporting.report import make_report

    def quiet(df, col):
        day = pd.to_datetime(df[col])
        day = (day.dt.tz_convert(None) if day.dt.tz is not None else day).dt.normalize()
        return df[~day.between("2023-09-30", "2023-10-01")].reset_index(drop=True)

    t = train_tables.replace(
        activities=quiet(train_tables.activities, "occurred_at"),
        engagement=quiet(train_tables.engagement, "date"),
    )
    as_of = dt.date(2023, 10, 2)
    scores = score_tables(t, as_of, model, settings)
    done = make_report(scores, t, settings, out=tmp_path / "q.html", model_info=model_info, pdf=False)
    figures = json.loads(done.json.read_text())
    assert not [n for n in figures["fairness"]["notes"] if "left out of the outcomes" in n]
    outcomes = finished_outcomes(t, as_of)
    assert (pd.to_datetime(outcomes["period_end"]) == pd.Timestamp("2023-09-30")).any()
    gender = next(a for a in figures["fairness"]["attributes"] if a["column"] == "gender")
    assert sum(o["n_periods"] for o in gender["outcomes"]) == len(outcomes)
    # and the intervention effects count Q3 as finished too (they read the same covered day)
    pairs = done.data.effects.pairs
    assert (pd.to_datetime(pairs["period_start"]) == pd.Timestamp("2023-07-01")).any()


def test_report_command(home, train_org, train_tables, model, settings, tmp_path):
    from markupsafe import escape

    from models.scoring import fitted_period_note, score_tables, write_scores

    fair_org = train_org  # the small organisation keeps this end-to-end run short
    frame = score_tables(train_tables, TRAIN_AS_OF, model, settings)
    scores = write_scores(frame, tmp_path / "scores.parquet")
    # the log passed in as the service exports it (CSV, the contract's interventions columns)
    log = tmp_path / "interventions_export.csv"
    train_tables.interventions.to_csv(log, index=False, date_format="%Y-%m-%d")

    def report(out, *extra):
        return run_cli(
            home, "report", "--scores", str(scores), "--data", str(fair_org), "--out", str(out), *extra
        )

    r = report(tmp_path / "q.html", "--no-pdf", "--interventions", str(log), "--lang", "zh-CN")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "could not be verified" not in r.stderr  # the file names the run that made it
    figures = json.loads((tmp_path / "q.json").read_text())
    assert figures["effects"]["table"]  # the log was used
    assert figures["model"]["scores_verified"] is True
    # TRAIN_AS_OF lies in a period the model was fitted on: the report says what `score` said of it
    note = fitted_period_note(
        [(pd.Timestamp("2023-04-01"), pd.Timestamp("2023-06-30"))], model.pyfunc.spec_.meta, "1"
    )
    assert note and note in frame.attrs["notes"]  # what `repradar score` printed with this file
    # the report in Chinese: its call-outs are; the JSON and the command's own lines stay English
    assert figures["fitted_period_note"] == note and f"note: {note}" in r.stderr
    assert figures["lang"] == "zh-CN" and note.startswith("the period 2023-04-01..2023-06-30 is in the data")
    html = (tmp_path / "q.html").read_text()
    assert '<html lang="zh-CN">' in html
    callouts = html[html.index('id="callouts"') : html.index('id="summary"')]
    zh = note.in_lang("zh-CN")
    assert zh.startswith("考核期 2023-04-01..2023-06-30 位于模型版本 1 拟合和校准所用的数据中")
    assert f'<li class="fitted-period-callout">并非预测：{escape(zh)}。</li>' in callouts
    assert (
        (tmp_path / "q.html").exists()
        and (tmp_path / "q.json").exists()
        and not (tmp_path / "q.pdf").exists()
    )
    assert (
        "wrote" in r.stdout
        and "fairness" in r.stdout.lower()
        and "drift: no feature beyond PSI 0.2" in r.stdout
    )
    bad = report(tmp_path / "q.txt")
    assert bad.exit_code == 2 and ".html" in bad.stderr
    fr = report(tmp_path / "fr.html", "--lang", "fr")
    assert fr.exit_code == 2 and "'fr'" in fr.stderr and "en or zh-CN" in fr.stderr, fr.stderr
    assert not (tmp_path / "fr.html").exists() and "Traceback" not in fr.stderr
    missing = run_cli(
        home,
        "report",
        "--scores",
        str(tmp_path / "nope.parquet"),
        "--data",
        str(fair_org),
        "--out",
        str(tmp_path / "x.html"),
    )
    assert missing.exit_code == 2 and "nope.parquet" in missing.stderr


def test_earlier_lists_are_set_against_what_happened_as_known_on_the_as_of_day(
    home, train_org, train_tables, model, settings, tmp_path
):
    """`report --earlier`: a week-3 list of 2023-Q3 is judged against the quarter's outcomes; a list of
    the running quarter (2023-Q4, ending after the as-of day) is not, though the folder holds its end;
    the figures are those of the period's own label (features.build.period_outcomes)."""
    from sklearn.metrics import roc_auc_score

    from features.build import period_outcomes
    from models.scoring import score_tables, write_scores

    now = write_scores(score_tables(train_tables, AS_OF, model, settings), tmp_path / "now.parquet")
    q3 = score_tables(train_tables, dt.date(2023, 7, 15), model, settings)
    q4 = score_tables(train_tables, dt.date(2023, 10, 14), model, settings)
    q3_file = write_scores(q3, tmp_path / "q3.parquet")
    q4_file = write_scores(q4, tmp_path / "q4.parquet")

    def report(out, *extra):
        return run_cli(
            home,
            "report",
            "--scores",
            str(now),
            "--data",
            str(train_org),
            "--out",
            str(out),
            "--no-pdf",
            *extra,
        )

    r = report(tmp_path / "r.html", "--earlier", str(q3_file), "--earlier", str(q4_file))
    assert r.exit_code == 0, r.stdout + r.stderr
    figures = json.loads((tmp_path / "r.json").read_text())
    rows = {x["as_of"]: x for x in figures["track_record"]["table"]}
    # the fairness audit sets the lists given out against what happened, per group too
    given = {a["column"]: a["given"] for a in figures["fairness"]["attributes"]}
    assert given["gender"] and sum(g["n_rows"] or 0 for g in given["gender"]) <= rows["2023-07-15"]["n_known"]
    assert set(rows) == {"2023-07-15", "2023-10-14"}
    # the running quarter: every rep pending, nothing judged
    assert rows["2023-10-14"]["n_known"] == 0 and rows["2023-10-14"]["n_pending"] == len(q4)
    # the finished quarter: the label of training, the AUC sklearn computes on the same reps
    out = period_outcomes(train_tables, AS_OF, since=dt.date(2023, 9, 1))
    out = out[pd.to_datetime(out["period_start"]) == pd.Timestamp("2023-07-01")]
    joined = q3.merge(out[["rep_id", "missed"]], on="rep_id")
    row = rows["2023-07-15"]
    assert row["n_known"] == len(joined) > 100 and row["n_missed"] == int(joined["missed"].sum())
    assert row["auc"] == pytest.approx(roc_auc_score(joined["missed"].astype(bool), joined["risk"]))
    assert row["auc_low"] < row["auc"] < row["auc_high"]
    assert 0 <= row["ece"] < 1 and sum(b["n"] for b in row["bins"]) == row["n_known"]
    high = joined["risk_band"] == "high"
    assert row["high_missed"] == int((high & joined["missed"].astype(bool)).sum())
    assert "earlier scores: as of 2023-07-15 (model version 1):" in r.stdout
    assert "as of 2023-10-14 (model version 1): 0 reps with an outcome, none finished yet" in r.stdout
    html = (tmp_path / "r.html").read_text()
    section = html[html.index('id="track-record"') : html.index('id="effects"')]
    assert 'data-as-of="2023-07-15"' in section and f"{row['auc']:.3f}" in section
    assert '<table class="given" data-column="gender">' in html
    # Q3 lies in the data model version 1 was fitted on: the report says these risks are no forecast
    assert "2023-07-01..2023-09-30 is in the data model version 1 was fitted" in section
    # without --earlier the section says how to fill it
    assert report(tmp_path / "plain.html").exit_code == 0
    assert "repradar report --earlier FILE" in (tmp_path / "plain.html").read_text()
    # a list scored after the report's day, or passed twice: refused before any work, nothing written
    late = write_scores(
        score_tables(train_tables, dt.date(2023, 11, 20), model, settings), tmp_path / "late.parquet"
    )
    bad = report(tmp_path / "bad.html", "--earlier", str(late))
    assert bad.exit_code == 2 and "late.parquet" in bad.stderr and "2023-11-20" in bad.stderr, bad.stderr
    twice = report(tmp_path / "bad.html", "--earlier", str(q3_file), "--earlier", str(q3_file))
    assert twice.exit_code == 2 and "more than once" in twice.stderr and "Traceback" not in twice.stderr
    assert not (tmp_path / "bad.html").exists() and not (tmp_path / "bad.json").exists()


def test_alerts_command_dry_run_then_remembers_the_batch(home, fair_scores, tmp_path):
    from models.scoring import write_scores

    now = write_scores(fair_scores, tmp_path / "now.parquet")
    prev_frame = fair_scores.copy()
    prev_frame["risk_band"] = "low"
    prev = write_scores(prev_frame, tmp_path / "prev.parquet")
    r = run_cli(
        home,
        "alerts",
        "--scores",
        str(now),
        "--previous",
        str(prev),
        "--dry-run",
        "--out",
        str(tmp_path / "d"),
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    n_high_managers = fair_scores.loc[fair_scores["risk_band"] == "high", "manager_id"].nunique()
    assert len(list((tmp_path / "d").glob("digest_*.json"))) == n_high_managers
    # a real run needs a channel
    r = run_cli(home, "alerts", "--scores", str(now), "--previous", str(prev))
    assert r.exit_code == 2 and "REPRADAR_ALERTS_WEBHOOK_URL" in r.stderr
    assert (
        str(AS_OF)
        in (tmp_path / "d" / sorted(p.name for p in (tmp_path / "d").glob("*.json"))[0]).read_text()
    )
