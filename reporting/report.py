"""The quarterly report: one self-contained HTML file (charts inline) and a PDF of it.

`build_report(scores, tables, settings, out=...)` is what the CLI (`repradar report`) and the
service's HR page call. `assemble` gathers the figures (usable without rendering); `render_html`
and `print_pdf` write the files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from models import i18n
from models.i18n import Message, localise
from models.scoring import definitions_note, fitted_note
from reporting import charts, labels
from reporting.drift import DriftResult, drift_report, reference_summary
from reporting.effects import (
    OBSERVATIONAL_NOTE,
    EffectsResult,
    match_effects,
    normalise_interventions,
    snapshot_risks,
)
from reporting.fairness import FairnessAudit, fairness_audit, finished_outcomes, ratio_text
from reporting.inputs import (
    InterventionLog,
    as_intervention_log,
    check_model_run,
    check_model_versions,
    check_one_score_per_rep,
    check_scores_reps_in_data,
)
from reporting.modelinfo import ModelInfo, heldout_predictions, load_model_info
from reporting.settings import ReportSettings
from reporting.summary import band_table, manager_suggestions, org_summary, with_context
from reporting.track_record import TrackRecord, check_earlier, given_rows, track_record
from repradar.errors import UserError
from repradar.files import replacing
from repradar.progress import step

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class ReportData:
    """Every figure the report shows."""

    summary: dict
    bands: dict[str, pd.DataFrame]
    suggestions: pd.DataFrame
    model: ModelInfo
    fairness: FairnessAudit
    drift: DriftResult | None
    effects: EffectsResult | None
    settings: object
    report_settings: ReportSettings
    drift_missing: str = ""
    effects_missing: str = ""
    notes: list[str] = field(default_factory=list)
    generated_at: str = ""
    unverified: str | None = None  # the scores could not be matched with the model's run (older file)
    # the scored period lies in the data the model was fitted on: in-sample risks (models.scoring.fitted_note)
    fitted_period: str | None = None
    # the model was trained on other feature definitions than this code computes (models.scoring.definitions_note)
    feature_definitions: str | None = None
    lang: str = i18n.DEFAULT_LANGUAGE  # the language of the HTML (and PDF); the JSON's texts are English
    track: TrackRecord | None = None  # earlier lists against their outcomes (`--earlier`), None without

    def to_dict(self) -> dict:
        return {
            "generated_at": self.generated_at,
            "lang": self.lang,
            "summary": self.summary,
            "fitted_period_note": self.fitted_period,  # null: the scored period is out of sample
            # null: the model was trained on the current feature definitions, or before they were recorded
            "feature_definitions_note": self.feature_definitions,
            "model": {
                "name": self.model.name,
                "version": self.model.version,
                "run_id": self.model.run_id,
                "scores_verified": self.unverified is None,  # the scores name this run (model_run_id)
                "worse_than_pacing": self.model.worse_than_pacing(),  # null: no worse than the pace
            },
            "fairness": self.fairness.to_dict(),
            "drift": None if self.drift is None else self.drift.to_dict(),
            "effects": None if self.effects is None else self.effects.to_dict(),
            "track_record": None if self.track is None else self.track.to_dict(),
            "suggestions": self.suggestions.drop(columns=["reason_zh"], errors="ignore").to_dict("records"),
            "notes": self.notes,
        }


@dataclass
class ReportFiles:
    html: Path
    pdf: Path | None
    json: Path
    pdf_error: str | None
    data: ReportData


# ---------------------------------------------------------------------------------------------
def _scored_frame(tables, scores: pd.DataFrame, settings, as_of: dt.date) -> pd.DataFrame:
    """The scored snapshot's features, recomputed for the scores' as-of day (the reps in the file)."""
    from features.build import build_scoring_set

    fs = build_scoring_set(tables, as_of, miss_threshold=settings.miss_threshold)
    f = fs.frame
    keep = set(scores["rep_id"].astype(str))
    return f[f["rep_id"].astype(str).isin(keep)].reset_index(drop=True)


def known_on(tables, as_of: dt.date):
    """The tables as an export taken on the as-of day would hold them (`features.pit.truncate_at`:
    events, deals and their states, interventions started, quotas of periods begun, before that day).

    Every figure of a report is as of its as-of day. A data folder running past it (a back-fill, an
    as-of day typed in the wrong year, a later export) would otherwise let what happened afterwards in:
    periods that ended after the as-of day counted as finished, deals that closed later in their
    outcomes, the risk `horizon_days` later, interventions started since. The tables are returned as
    they are when nothing in them is on or after that day."""
    from features.pit import truncate_at
    from features.staging import day_number, latest_data_day

    latest = latest_data_day(tables)
    iv = tables.interventions
    later = latest is not None and latest >= day_number(as_of)
    if not later and iv is not None and len(iv):
        later = bool((pd.to_datetime(iv["started_on"]) >= pd.Timestamp(as_of)).any())
    if not later:
        return tables
    step(f"reading the data folder as it was on {as_of} (it runs past the as-of day)")
    return truncate_at(tables, as_of)


def _reference_from_data(tables, info: ModelInfo, settings, rs: ReportSettings) -> dict | None:
    """Fallback for runs that logged no drift reference: rebuild its training window from the data."""
    from features.build import build_training_set

    run_params = {}
    try:
        from models import registry

        client = registry.configure(settings)
        run_params = client.get_run(info.run_id).data.params if info.run_id else {}
    except Exception:
        return None
    window = run_params.get("split.train_window")
    if not window or ".." not in window:
        return None
    lo, hi = (pd.Timestamp(x) for x in window.split(".."))
    every = int(run_params.get("every_days", settings.snapshot_every_days))
    fs = build_training_set(tables, every_days=every, miss_threshold=settings.miss_threshold)
    f = fs.frame
    f = f[(f["period_start"] >= lo) & (f["period_end"] <= hi)]
    if f.empty:
        return None
    return reference_summary(f, info.feature_names, bins=rs.psi_bins)


def intervention_effects(
    tables, model, settings, rs: ReportSettings, finished_before=None
) -> tuple[EffectsResult | None, str]:
    """What the interventions of `tables.interventions` achieved in the finished periods of `tables`,
    scored with `model` (reporting.effects), or (None, why not). The report passes the tables as
    known on its as-of day (`known_on`), so only periods that ended before it count, and
    `finished_before`, the day periods must end before: the as-of day, or the day after the folder's
    latest event when it stops earlier (a quarter ending on a quiet weekend before the as-of day is
    finished even though the cut tables' last event is on the Friday)."""
    norm = normalise_interventions(tables.interventions)
    step(f"intervention effects: {len(norm):,} logged interventions, weekly risks of their periods")
    snaps = snapshot_risks(
        tables,
        model,
        norm,
        settings=settings,
        horizon_days=rs.effect_horizon_days,
        reference_day=finished_before,
    )
    if snaps.empty:
        return None, Message("report.note.none_finished", n=len(norm))
    effects = match_effects(
        snaps,
        norm,
        k=rs.effect_neighbours,
        caliper=rs.effect_caliper,
        horizon_days=rs.effect_horizon_days,
        min_reps=rs.effect_min_reps,
        confidence=rs.effect_confidence,
    )
    return effects, ""


def assemble(
    scores: pd.DataFrame,
    tables,
    settings,
    *,
    report_settings: ReportSettings | None = None,
    interventions: pd.DataFrame | InterventionLog | None = None,
    model_info: ModelInfo | None = None,
    scored_frame: pd.DataFrame | None = None,
    earlier: pd.DataFrame | None = None,
) -> ReportData:
    """Gather the report's figures for one scores frame and its data folder's tables; `earlier`: scores
    given out before (reporting.track_record), set against their periods' outcomes."""
    rs = report_settings or ReportSettings()
    notes: list[str] = []
    if scores is None or len(scores) == 0:
        raise UserError(
            "the scores file has no rows: score first (`repradar score --data DIR --as-of DATE --out FILE`)"
        )
    missing = [
        c
        for c in ("rep_id", "manager_id", "risk", "risk_band", "as_of", "model_version")
        if c not in scores.columns
    ]
    if missing:
        raise UserError(
            f"the scores file lacks column(s) {', '.join(missing)}: pass a file written by `repradar score`"
        )
    version = check_model_versions(scores)
    check_one_score_per_rep(scores)
    # a log passed in is checked by the contract's validator before any slow work (reporting.inputs)
    log_in = as_intervention_log(interventions, reps=None if tables is None else tables.reps)
    check_scores_reps_in_data(scores, tables.reps)
    scores = with_context(scores, tables.reps)
    as_ofs = sorted({pd.Timestamp(a).date() for a in scores["as_of"].dropna()})
    as_of = as_ofs[-1]
    if len(as_ofs) > 1:
        notes.append(Message("report.note.several_as_of", as_of=as_of))

    if earlier is not None:
        check_earlier(earlier, "scores", as_of)

    if model_info is None:  # refuses scores of another model before anything is downloaded
        step(f"loading model version {version} and its training run from MLflow")
        info = load_model_info(settings, version, scores=scores)
        unverified = info.unverified
    else:
        info = model_info
        unverified = check_model_run(
            scores, name=info.name, version=info.version, run_id=info.run_id, home=settings.resolved_home
        )
        if unverified:
            notes.append(unverified)
    notes += info.notes
    # what `repradar score` said of these scores: in-sample risks must not be read as a forecast
    fitted = fitted_note(scores, info.model)
    # outcomes, drift and effects read the data as known on the as-of day (a log passed in, too)
    log = log_in.frame if log_in is not None else tables.interventions
    folder = tables.replace(interventions=log)
    known = known_on(folder, as_of)
    # the day after the folder's latest event, before the cut: periods ending before it are covered
    from features.build import default_reference_day

    covered = default_reference_day(folder)
    if known is not folder:
        notes.append(Message("report.note.runs_past", as_of=as_of))

    step("summary, bands and manager-level suggestions")
    summary = org_summary(scores)
    bands = {by: band_table(scores, by) for by in ("manager_id", "team", "region", "segment")}
    suggestions = manager_suggestions(scores, ratio=rs.coaching_ratio, min_reps=rs.coaching_min_reps)

    # earlier lists against what happened
    track, given = None, None
    if earlier is not None and len(earlier):
        step("earlier scores against their outcomes")
        first_end = pd.to_datetime(earlier["period_end"]).min().date()
        track_notes: list[str] = []
        outcomes = finished_outcomes(
            known,
            as_of,
            miss_threshold=settings.miss_threshold,
            lookback_days=max((as_of - first_end).days + 1, 1),
            notes=track_notes,
            covered_before=covered,
        )
        track = track_record(earlier, outcomes, alpha=rs.alpha)
        # lists this very model made of periods it was fitted on are no forecast (rescored afterwards)
        mine = earlier[earlier["model_version"].astype(str) == str(info.version)]
        in_sample = fitted_note(mine, info.model) if len(mine) else None
        track.notes = track_notes + ([in_sample] if in_sample else []) + track.notes
        given = given_rows(earlier, outcomes)

    # fairness
    step("fairness audit")
    held = heldout_predictions(info)
    outcome_notes: list[str] = []
    fair = fairness_audit(
        scores,
        tables.reps,
        heldout=held,
        low=rs.impact_low,
        high=rs.impact_high,
        min_group_size=rs.min_group_size,
        reference=rs.impact_reference,
        alpha=rs.alpha,
        controls=rs.control_attributes,
        model_features=info.feature_names,
        outcomes=finished_outcomes(
            known,
            as_of,
            miss_threshold=settings.miss_threshold,
            lookback_days=rs.outcome_lookback_days,
            notes=outcome_notes,
            covered_before=covered,  # what the folder covers, before the cut
        ),
        min_cell=rs.min_cell,
        high_cut=settings.band_high,
        given=given,
    )
    fair.notes += outcome_notes
    if held is None:
        fair.notes.append(Message("report.note.no_heldout_set"))

    # drift
    drift, drift_missing = None, ""
    reference = info.reference
    if reference is None:
        reference = _reference_from_data(known, info, settings, rs)
        if reference is not None:
            notes.append(Message("report.note.reference_rebuilt"))
    if reference is None:
        drift_missing = Message("report.note.no_reference")
    else:
        step(f"drift against the training data (features as of {as_of})")
        frame = scored_frame if scored_frame is not None else _scored_frame(known, scores, settings, as_of)
        drift = drift_report(
            reference,
            frame,
            threshold=rs.psi_threshold,
            watch=rs.psi_watch,
            missing_shift=rs.missing_shift,
            week_window=rs.drift_week_window,
            seasonal=rs.drift_same_season,
            exclude=rs.drift_exclude,
            drivers=scores["drivers"] if "drivers" in scores.columns else None,
            driver_depth=rs.driver_depth,
        )

    # interventions
    effects, effects_missing = None, ""
    if log is None or len(log) == 0:
        effects_missing = Message("report.note.no_log")
    elif known.interventions is None or len(known.interventions) == 0:
        effects_missing = Message("report.note.none_before", as_of=as_of)
    else:
        day = pd.Timestamp(as_of).date()
        finished_before = day if covered is None else min(day, covered)
        effects, effects_missing = intervention_effects(
            known, info.model, settings, rs, finished_before=finished_before
        )
    return ReportData(
        summary=summary,
        bands=bands,
        suggestions=suggestions,
        model=info,
        fairness=fair,
        drift=drift,
        effects=effects,
        settings=settings,
        report_settings=rs,
        drift_missing=drift_missing,
        effects_missing=effects_missing,
        notes=notes,
        generated_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        unverified=unverified,
        fitted_period=fitted,
        feature_definitions=definitions_note(info.model),
        track=track,
    )


# ---------------------------------------------------------------------------------------------
def _pct(v, digits=1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.{digits}f}%"


def _signed(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:+.{digits}f}"


def _signed_pct(v, digits=1, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
    """A difference in percentage points: "+1.2 pt" / "+1.2 个百分点"."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return i18n.text(lang, "report.points", v=f"{100 * v:+.{digits}f}")


def _ci(low, high, signed: bool = False, lang: str = i18n.DEFAULT_LANGUAGE) -> Markup:
    """ " [lo, hi]" in muted text after a rate (nothing when the interval is unknown)."""
    if low is None or high is None or (isinstance(low, float) and math.isnan(low)):
        return Markup("")
    fmt = (lambda v: _signed_pct(v, 0, lang)) if signed else (lambda v: _pct(v, 0))
    return Markup(' <span class="muted">[{}, {}]</span>').format(fmt(low), fmt(high))


def _ci_fixed(low, high, digits: int = 2) -> Markup:
    """ " [lo, hi]" of a figure written with `digits` decimals (nothing when the interval is unknown)."""
    if low is None or high is None or (isinstance(low, float) and math.isnan(low)):
        return Markup("")
    return Markup(' <span class="muted">[{}, {}]</span>').format(
        i18n.format_fixed(low, digits), i18n.format_fixed(high, digits)
    )


def _band_table(
    t: pd.DataFrame, by: str, title: str, max_rows: int = 40, lang: str = i18n.DEFAULT_LANGUAGE
) -> Markup:
    heads = "".join(
        f"<th>{html.escape(i18n.text(lang, f'report.col.{c}'))}</th>"
        for c in ("reps", "high", "medium", "low", "high_share", "mean_risk")
    )
    rows = [
        f'<table class="bands" data-by="{html.escape(by)}"><tr><th class="l">{html.escape(title)}</th>{heads}</tr>'
    ]
    for r in t.head(max_rows).to_dict("records"):
        rows.append(
            f'<tr><td class="l">{html.escape(str(r[by]))}</td><td>{i18n.format_count(r["reps"])}</td>'
            f'<td class="high">{i18n.format_count(r["high"])}</td><td>{i18n.format_count(r["medium"])}</td><td>{i18n.format_count(r["low"])}</td>'
            f"<td>{_pct(r['high_share'])}</td><td>{_pct(r['mean_risk'])}</td></tr>"
        )
    rows.append("</table>")
    if len(t) > max_rows:
        more = i18n.text(lang, "report.summary.more", n=i18n.format_count(len(t) - max_rows))
        rows.append(f'<p class="note">{html.escape(more)}</p>')
    return Markup("".join(rows))


def _card_html(card: str | None) -> str | None:
    if not card:
        return None
    try:
        from markdown_it import MarkdownIt

        # html=False: the card's text is shown, never run
        return MarkdownIt("commonmark", {"html": False}).enable("table").render(card)
    except ImportError:  # pragma: no cover - markdown-it-py ships with the project
        return f"<pre>{html.escape(card)}</pre>"


def _charts(data: ReportData, scores_risk, band_high: float, band_medium: float, lang: str) -> dict:
    c = {"histogram": charts.risk_histogram(scores_risk, band_high, band_medium, lang=lang)}
    for by in ("team", "region", "segment"):
        t = data.bands[by]
        c[f"bands_{by}"] = charts.band_bars(t, by, lang=lang) if len(t) > 1 else None
    for i, a in enumerate(data.fairness.attributes):
        c[f"fair_{i}"] = charts.fairness_bars(a.selection, data.fairness.low, lang=lang)
        if a.calibration is not None and len(a.calibration):
            c[f"cal_{i}"] = charts.calibration_dots(a.calibration, lang=lang)
    if data.drift is not None and len(data.drift.table):
        c["psi"] = charts.psi_bars(data.drift.table, data.drift.threshold, data.drift.watch, lang=lang)
    if data.effects is not None and data.effects.table["enough"].any():
        c["effects"] = charts.effect_forest(data.effects.table, lang=lang)
    else:
        c["effects"] = None
    return c


def drift_callout_text(d, lang: str = i18n.DEFAULT_LANGUAGE) -> str | None:
    """The drift call-out at the top, None unless retraining is advised. The share of scores resting
    on drifted features is written as in the drift section (one decimal: 1.4%, not "1%")."""
    if d is None or not d.retrain_advised:
        return None
    share = (
        ""
        if d.share_on_drifted is None
        else Message("report.note.drift_share", share=_pct(d.share_on_drifted))
    )
    return i18n.text(
        lang,
        "report.note.drift_retrain",
        n=len(d.drifted),
        threshold=d.threshold,
        features=localise(i18n.Items(labels.feature_label(x, lang) for x in d.drifted[:5]), lang),
        more="..." if len(d.drifted) > 5 else "",
        share=localise(share, lang),
    )


def render_html(data: ReportData, scores: pd.DataFrame, out: Path) -> Path:
    """Write the self-contained HTML report."""
    out = Path(out)
    write_files({out: html_text(data, scores)})
    return out


def _texts(lang: str) -> dict:
    """The template's words in `lang`: `t` for a text, `th` for one holding markup of its own (its values
    escaped), `tr` for a note made while the figures were gathered (a Message, or a text as it is)."""

    def t(key: str, **params) -> str:
        return i18n.text(lang, key, **{k: localise(v, lang) for k, v in params.items()})

    def th(key: str, **params) -> Markup:
        return Markup(
            i18n.text(lang, key, **{k: html.escape(str(localise(v, lang))) for k, v in params.items()})
        )

    def tr(value) -> str:
        return "" if value is None else str(localise(value, lang))

    return {"t": t, "th": th, "tr": tr}


def html_text(data: ReportData, scores: pd.DataFrame, lang: str | None = None) -> str:
    """The self-contained HTML report, as text, in `lang` (default: the report's own, `data.lang`)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from reporting.fairness import group_name

    lang = lang or data.lang
    app_version = _app_version()

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]))
    tmpl = env.get_template("report.html.j2")
    s = data.settings
    d = data.drift
    drift_callout = drift_callout_text(d, lang)
    hm = data.model.heldout_metrics()
    card, card_lang = data.model.card_in(lang)
    return tmpl.render(
        lang=lang,
        **_texts(lang),
        group=lambda g: localise(group_name(g), lang),
        count=i18n.format_count,
        reason=lambda r: (
            (r.get("reason_zh") or r["reason"]) if lang != i18n.DEFAULT_LANGUAGE else r["reason"]
        ),
        s=data.summary,
        m=data.model,
        f=data.fairness,
        d=d,
        e=data.effects,
        tr_rec=data.track,
        rs=data.report_settings,
        bands=data.bands,
        suggestions=data.suggestions.to_dict("records"),
        callouts=data.fairness.callouts,
        drift_callout=drift_callout,
        pacing_callout=localise(data.model.worse_than_pacing(), lang),
        fitted_period=data.fitted_period,
        definitions_callout=localise(data.feature_definitions, lang),
        drift_missing=data.drift_missing,
        effects_missing=data.effects_missing,
        observational=OBSERVATIONAL_NOTE,
        heldout_metrics=None if hm is None else hm.to_dict("records"),
        card_html=_card_html(card),
        card_lang=card_lang,
        charts=_charts(data, scores["risk"], s.band_high, s.band_medium, lang),
        band_high=s.band_high,
        band_medium=s.band_medium,
        notes=data.notes,
        generated_at=data.generated_at,
        app_version=app_version,
        pct=_pct,
        num=i18n.format_fixed,
        signed=_signed,
        signed_pct=lambda v, digits=1: _signed_pct(v, digits, lang),
        ci=lambda low, high, signed=False: _ci(low, high, signed, lang),
        # an interval of figures that are not rates (ROC-AUC): " [0.84, 0.93]"
        ci2=lambda low, high: _ci_fixed(low, high),
        band_table=lambda t, by, title, max_rows=40: _band_table(t, by, title, max_rows, lang),
        title=lambda i: labels.intervention_title(i, lang),
        label=lambda x: labels.feature_label(x, lang),
        labels_of=lambda xs: i18n.text(lang, "report.sep").join(labels.feature_label(x, lang) for x in xs),
        has=lambda key: i18n.has(lang, key),
        value=lambda name, v: labels.feature_value(name, v, lang, currency=data.model.currency),
        ratio=lambda r: ratio_text(r, data.fairness.low, data.fairness.high),
    )


def write_files(texts: dict[Path, str]) -> None:
    """Write the report's files as one: each beside its target under a name of its own (two reports to one
    path at once do not mix), then all renamed. A write that fails (a full disk) changes none of them,
    leaves no temporary file, and is a UserError saying what to do rather than an internal error."""
    try:
        # every file written before any is renamed: a failed write unwinds them all, unrenamed
        with contextlib.ExitStack() as files:
            for path, text in texts.items():
                files.enter_context(replacing(path)).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(
            f"could not write {path}: {exc.strerror or exc}; the report's files were left as they were. "
            "Free space on its disk (or choose another --out) and run the command again"
        ) from None


def _app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("repradar")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "dev"


def find_chromium(configured: Path | None = None) -> Path | None:
    """The Chromium binary: the configured path, else chromium on PATH."""
    if configured and Path(configured).exists():
        return Path(configured)
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return Path(p)
    return None


def print_pdf(
    html_path: Path, pdf_path: Path, *, chromium: Path | None = None, timeout_s: float = 120.0
) -> str | None:
    """Print the HTML to PDF with headless Chromium; returns None on success, else why it failed."""
    exe = find_chromium(chromium)
    if exe is None:
        return (
            f"PDF not written: Chromium was not found at {chromium} nor on PATH "
            "(install the Debian package `chromium`, or set REPRADAR_REPORT_CHROMIUM)"
        )
    pdf_path = Path(pdf_path)
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_pdf = pdf_path.with_name(f".{pdf_path.name}.tmp")
    with tempfile.TemporaryDirectory(prefix="repradar-chromium-") as profile:
        cmd = [
            str(exe),
            "--headless",
            "--no-sandbox",  # runs as root in containers and CI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--no-first-run",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={tmp_pdf}",
            Path(html_path).resolve().as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            tmp_pdf.unlink(missing_ok=True)
            return f"PDF not written: Chromium did not finish within {timeout_s:g} s"
        except OSError as exc:
            return f"PDF not written: Chromium could not start ({exc})"
    if proc.returncode != 0 or not tmp_pdf.exists() or tmp_pdf.stat().st_size == 0:
        tmp_pdf.unlink(missing_ok=True)
        tail = " ".join((proc.stderr or "").strip().splitlines()[-2:])[:300]
        return f"PDF not written: Chromium exited with status {proc.returncode} ({tail})"
    tmp_pdf.replace(pdf_path)
    return None


def _json_default(o):
    if isinstance(o, pd.Timestamp | dt.date):
        return o.isoformat()
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def make_report(
    scores: pd.DataFrame,
    tables,
    settings,
    *,
    out: Path,
    report_settings: ReportSettings | None = None,
    interventions: pd.DataFrame | InterventionLog | None = None,
    pdf: bool = True,
    model_info: ModelInfo | None = None,
    lang: str = i18n.DEFAULT_LANGUAGE,
    earlier: pd.DataFrame | None = None,
) -> ReportFiles:
    """Assemble and write `out` (HTML), the PDF beside it (same name, .pdf) and a JSON of the figures.
    `lang`: the language of the HTML and the PDF (models.i18n.LANGUAGES); the JSON is the same in each."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {out}: name the report file .html (the PDF is written beside it)")
    if lang not in i18n.LANGUAGES:
        raise UserError(f"--lang {lang!r}: the report is written in {' or '.join(i18n.LANGUAGES)}")
    rs = report_settings or ReportSettings()
    data = assemble(
        scores,
        tables,
        settings,
        report_settings=rs,
        interventions=interventions,
        model_info=model_info,
        earlier=earlier,
    )
    data.lang = lang
    step(f"writing {out}")
    html_path, json_path = out, out.with_suffix(".json")
    write_files(
        {
            html_path: html_text(data, with_context(scores, tables.reps)),
            json_path: json.dumps(_clean(data.to_dict()), indent=1, default=_json_default),
        }
    )
    pdf_path, pdf_error = None, None
    if pdf:
        pdf_path = out.with_suffix(".pdf")
        step(f"printing {pdf_path} with Chromium")
        pdf_error = print_pdf(html_path, pdf_path, chromium=rs.chromium, timeout_s=rs.pdf_timeout_s)
        if pdf_error:
            pdf_path = None
    return ReportFiles(html=html_path, pdf=pdf_path, json=json_path, pdf_error=pdf_error, data=data)


def _clean(o):
    """NaN and infinities as null, so the JSON is strict."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if hasattr(o, "item") and not isinstance(o, str):
        try:
            return _clean(o.item())
        except (ValueError, AttributeError):
            return o
    return o


def build_report(
    scores: pd.DataFrame,
    tables,
    settings,
    *,
    out: Path,
    report_settings: ReportSettings | None = None,
    interventions: pd.DataFrame | InterventionLog | None = None,
    pdf: bool = True,
    lang: str = i18n.DEFAULT_LANGUAGE,
) -> Path:
    """Write the report (HTML, PDF beside it when Chromium is there, JSON of the figures); returns the HTML path."""
    return make_report(
        scores,
        tables,
        settings,
        out=out,
        report_settings=report_settings,
        interventions=interventions,
        pdf=pdf,
        lang=lang,
    ).html
