"""What the report needs from MLflow about the model that scored: its run's card, held-out metrics,
held-out feature set and the training set's binned summary (for drift)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from models.i18n import DEFAULT_LANGUAGE, Message
from repradar.errors import UserError

CARD = "model_card.md"
# The model card in each language training writes it in (training/card.py); runs trained before the
# Chinese card have only the English one.
CARDS = {"en": CARD, "zh-CN": "model_card.zh-CN.md"}
METRICS = "evaluation/metrics.csv"
HELDOUT = "heldout/heldout_features.parquet"
DRIFT_REFERENCE = "drift/reference.json"


EARLY_WEEK = 3  # the week of the period the call-out also reads: early is what the risks are for


@dataclass
class ModelInfo:
    name: str
    version: str
    run_id: str | None
    model: object  # models.loading.LoadedModel
    tags: dict = field(default_factory=dict)
    card: str | None = None  # the English card (model_card.md), which every run has
    cards: dict[str, str] = field(default_factory=dict)  # language -> card, for each one the run logged
    metrics: pd.DataFrame | None = None
    heldout: pd.DataFrame | None = None
    reference: dict | None = None
    aliases: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unverified: str | None = None  # why the scores could not be matched with this version's run

    @property
    def feature_names(self) -> list[str]:
        return list(self.model.pyfunc.feature_names)

    @property
    def currency(self) -> str:
        """The ISO code of the amounts the model was trained on, which the report writes them in."""
        from models.scoring import model_currency

        return model_currency(self.model)

    def card_in(self, lang: str) -> tuple[str | None, str]:
        """The card to show in a report in `lang` and the language it is written in: the run's own card in
        that language, else the English one (a run trained before the Chinese card was written)."""
        if self.cards.get(lang):
            return self.cards[lang], lang
        return self.card, DEFAULT_LANGUAGE

    def heldout_metrics(self) -> pd.DataFrame | None:
        """Held-out metrics, overall: model and baselines as rows."""
        m = self.metrics
        if m is None or m.empty:
            return None
        sel = m[(m["rows"] == "heldout") & (m["scope"] == "overall")]
        cols = [
            c
            for c in ("model", "n", "n_missed", "auc", "pr_auc", "brier", "ece", "top10_precision")
            if c in sel.columns
        ]
        return sel[cols].reset_index(drop=True)

    def worse_than_pacing(self) -> str | None:
        """Why the risks add nothing to the pace, when on its held-out period the model ranked worse
        (ROC-AUC) and was less accurate (Brier) than the pacing rule; None otherwise. The promotion gate
        compares a version with the champion, never with the baselines, so HR hears it here."""
        return pacing_comparison(
            self.heldout_metrics(), self.tags.get("test_window"), week_metrics(self.metrics)
        )


def pacing_comparison(
    heldout: pd.DataFrame | None, window: str | None = None, early: pd.DataFrame | None = None
) -> str | None:
    """The call-out of `ModelInfo.worse_than_pacing` from the held-out metrics (model and baselines as rows).

    `early`: the same rows at week EARLY_WEEK of the period; where the model ranked better than the pace
    there, the call-out says so, since the early weeks are what the risks are for and the pace says
    least there."""
    if heldout is None or not {"model", "auc", "brier"} <= set(heldout.columns):
        return None
    rows = heldout.set_index("model")
    if not {"model", "pacing"} <= set(rows.index):
        return None
    m, p = rows.loc["model"], rows.loc["pacing"]
    if pd.isna([m["auc"], m["brier"], p["auc"], p["brier"]]).any():
        return None
    if not (m["auc"] < p["auc"] and m["brier"] > p["brier"]):
        return None
    period = f" ({window})" if window else ""
    better = ""
    e = early.set_index("model") if early is not None and {"model", "auc"} <= set(early.columns) else None
    if e is not None and {"model", "pacing"} <= set(e.index):
        em, ep = e.loc["model", "auc"], e.loc["pacing", "auc"]
        if pd.notna(em) and pd.notna(ep) and em > ep:
            better = Message("report.note.pacing_early", week=EARLY_WEEK, auc=float(em), pace_auc=float(ep))
    return Message(
        "report.note.pacing",
        period=period,
        auc=float(m["auc"]),
        pace_auc=float(p["auc"]),
        brier=float(m["brier"]),
        pace_brier=float(p["brier"]),
        early=better,
    )


def week_metrics(metrics: pd.DataFrame | None, week: int | None = None) -> pd.DataFrame | None:
    """Held-out metrics at one week of the period (default EARLY_WEEK): model and baselines as rows."""
    week = EARLY_WEEK if week is None else week
    if metrics is None or metrics.empty or not {"rows", "scope", "group"} <= set(metrics.columns):
        return None
    sel = metrics[(metrics["rows"] == "heldout") & (metrics["scope"] == "week")]
    sel = sel[sel["group"].astype(str) == str(week)]
    return sel.reset_index(drop=True) if len(sel) else None


def _download(run_id: str, path: str, dst: str, settings) -> Path | None:
    import mlflow.artifacts

    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, dst_path=dst, tracking_uri=settings.tracking_uri
            )
        )
    except Exception:  # absent artifact: the report says what it could not show
        return None


def load_model_info(settings, version: str, model=None, *, scores: pd.DataFrame | None = None) -> ModelInfo:
    """The registered version `version` with what its training run logged.

    `scores`: the scores to describe; refused (UserError) when they name another model or another
    training run than this installation's version (reporting.inputs.check_model_run), before
    anything is downloaded; a file that cannot be checked gets a note.
    """
    from models import registry
    from models.loading import load_version
    from reporting.inputs import check_model_run

    if not registry.store_exists(settings):
        raise UserError(
            f"the scores were made by model version {version}, but this installation ({settings.resolved_home}) "
            "has no model registry; set REPRADAR_HOME to the installation that scored them"
        )
    client = registry.configure(settings)
    mv = registry.get_version(client, settings.model_name, str(version))
    if mv is None:
        raise UserError(
            f"model {settings.model_name!r} has no version {version} (the scores' model_version); "
            "set REPRADAR_HOME to the installation that scored them"
        )
    unverified = None
    if scores is not None:
        unverified = check_model_run(
            scores,
            name=settings.model_name,
            version=str(version),
            run_id=mv.run_id,
            home=settings.resolved_home,
        )
    model = model or load_version(settings, str(version))
    info = ModelInfo(
        name=settings.model_name,
        version=str(version),
        run_id=mv.run_id,
        model=model,
        tags=dict(mv.tags or {}),
        aliases=registry.aliases_by_version(client, settings.model_name).get(str(version), []),
    )
    if unverified:
        info.unverified = unverified
        info.notes.append(unverified)
    if not mv.run_id:
        info.notes.append(Message("report.note.no_run"))
        return info
    with tempfile.TemporaryDirectory(dir=registry.scratch_dir(settings)) as tmp:
        for lang, name in CARDS.items():
            p = _download(mv.run_id, name, tmp, settings)
            if p:
                info.cards[lang] = p.read_text(encoding="utf-8")
        info.card = info.cards.get(DEFAULT_LANGUAGE)
        p = _download(mv.run_id, METRICS, tmp, settings)
        info.metrics = pd.read_csv(p) if p else None
        p = _download(mv.run_id, HELDOUT, tmp, settings)
        info.heldout = pd.read_parquet(p) if p else None
        p = _download(mv.run_id, DRIFT_REFERENCE, tmp, settings)
        info.reference = json.loads(p.read_text()) if p else None
    for what, value in (
        ("what_card", info.card),
        ("what_metrics", info.metrics),
        ("what_heldout", info.heldout),
    ):
        if value is None:
            info.notes.append(
                Message("report.note.run_lacks", run=mv.run_id, what=Message(f"report.note.{what}"))
            )
    return info


def heldout_predictions(info: ModelInfo) -> pd.DataFrame | None:
    """rep_id, risk, missed of the held-out rows, scored by the model itself."""
    h = info.heldout
    if h is None or h.empty or "missed" not in h.columns:
        return None
    risk = info.model.pyfunc.predict_frame(h)["risk"].to_numpy()
    out = pd.DataFrame({"rep_id": h["rep_id"].astype(str).to_numpy(), "risk": risk})
    out["missed"] = pd.to_numeric(h["missed"].astype("Float64"), errors="coerce").to_numpy(
        dtype=float, na_value=float("nan")
    )
    for c in ("period_start", "as_of", "week_of_period", "segment"):
        if c in h.columns:
            out[c] = h[c].to_numpy()
    return out.dropna(subset=["missed"]).reset_index(drop=True)
