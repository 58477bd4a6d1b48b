"""`repradar train`: build snapshots, split by time, fit model + calibrator + baselines, evaluate,
log everything to MLflow, register a new version with the alias `challenger`."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from features.io import is_uri
from features.registry import definitions_fingerprint
from models.pyfunc import RepRadarModel, write_artifacts
from models.spec import PEER_PREFIX, FeatureSpec, base_feature
from repradar.errors import UserError
from repradar.progress import step as progress_step
from training.baselines import LogisticBaseline, PacingBaseline
from training.booster import RiskBooster, canonical_params
from training.calibrate import calibration_rows, choose_calibrator
from training.evaluate import attach_oracle, calibration_bins, evaluate, headline, load_oracle
from training.split import TimeSplit, check_outcomes, main_period_starts, time_split

LABEL = "missed"
KEYS = ["rep_id", "period_start", "period_end", "as_of"]
REPORT_WEEK = 3
PIP_REQUIREMENTS = ["mlflow>=3.0", "lightgbm>=4.3", "numpy>=1.26", "pandas>=2.2", "pyarrow>=15"]


# -- features and spec -------------------------------------------------------------------------
def model_features(fs) -> list[str]:
    """The model's inputs: the registry features the build produced, then their peer comparisons."""
    frame_cols = set(fs.frame.columns)
    names = [n for n in fs.feature_names if n in frame_cols]
    peers = [c for c in fs.frame.columns if c.startswith("peer__") and c not in names]
    return list(dict.fromkeys(names + peers))


def inputs_summary(names: list[str]) -> str:
    """The model's input count split as `build-training-set` counts it: its "features: N" are the registry
    features, and the model also reads each one's peer median (`peer__x`), so the two counts differ."""
    peers = sum(n.startswith(PEER_PREFIX) for n in names)
    feats = len(names) - peers
    return (
        f"{len(names)} model inputs: {feats} feature{'s' * (feats != 1)} and "
        f"{peers} peer median{'s' * (peers != 1)}"
    )


def _registry_entry(name: str):
    from features import registry

    try:
        return registry.get(name)
    except (KeyError, AttributeError, LookupError):
        return None


def feature_monotone(name: str) -> int:
    """Monotone direction from the registry; peer comparisons are left free (their sign depends on
    how the peer column is defined, and the rep's own value already carries the constraint)."""
    if name.startswith("peer__"):
        return 0
    f = _registry_entry(name)
    return int(getattr(f, "monotone", 0) or 0) if f is not None else 0


def build_spec(names: list[str], settings, meta: dict) -> FeatureSpec:
    groups, units, mono, better = {}, {}, {}, {}
    for n in names:
        f = _registry_entry(base_feature(n))
        groups[n] = f.group if f is not None else "other"
        units[n] = f.unit if f is not None else ""
        mono[n] = feature_monotone(n)
        if f is not None and f.better:
            better[n] = f.better
    return FeatureSpec(
        feature_names=list(names),
        groups=groups,
        units=units,
        monotone=mono,
        better=better,
        band_high=settings.band_high,
        band_medium=settings.band_medium,
        miss_threshold=settings.miss_threshold,
        max_drivers=settings.max_drivers,
        meta=meta,
        currency=settings.currency,  # the data's, which the model's texts write amounts in
    )


def matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    return frame[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def calibration_rows_for(frame, split, names, booster, raw_va, settings, *, params=None, seed=42):
    """`training.calibrate.calibration_rows` for this split: earlier periods are scored by boosters
    with the shipped one's parameters and tree count (no early stopping: nothing is tuned on the
    period scored), fitted on the training rows that ended before each period began."""
    y = frame[LABEL].astype(int).to_numpy()
    fold_params = {k: v for k, v in canonical_params(params).items() if k != "num_iterations"}

    def fit_and_score(fit, score):
        xs = matrix(frame[score], names)
        b = RiskBooster(
            params=fold_params,
            num_boost_round=booster.best_iteration_,
            early_stopping_rounds=0,
            seed=seed,
            num_threads=settings.train_num_threads,
        ).fit(matrix(frame[fit], names), y[fit], xs, y[score], names, [feature_monotone(n) for n in names])
        return b.booster_.predict(xs, raw_score=True)

    return calibration_rows(
        frame["period_start"],
        frame["period_end"],
        split.train,
        split.valid,
        y,
        frame["rep_id"].astype(str).to_numpy(),
        raw_va,
        main_period_starts(frame),
        settings.calibration_periods,
        fit_and_score,
        min_each=settings.min_misses,
    )


# -- fitting (no MLflow) -----------------------------------------------------------------------
@dataclass
class Fitted:
    names: list[str]
    spec: FeatureSpec
    booster: RiskBooster
    calibrator: object
    calibration: dict
    pacing: PacingBaseline
    logistic: LogisticBaseline


def fit_all(
    frame: pd.DataFrame, split: TimeSplit, names: list[str], settings, *, params=None, seed=None
) -> Fitted:
    """Fit booster (train, early-stopped on valid), calibrator (valid and the periods before it,
    scored out of time: `REPRADAR_CALIBRATION_PERIODS`) and both baselines (train)."""
    seed = settings.seed if seed is None else seed
    tr, va = frame[split.train], frame[split.valid]
    y_tr, y_va = tr[LABEL].astype(int).to_numpy(), va[LABEL].astype(int).to_numpy()
    mono = [feature_monotone(n) for n in names]
    booster = RiskBooster(params=params, seed=seed, num_threads=settings.train_num_threads).fit(
        matrix(tr, names), y_tr, matrix(va, names), y_va, names, mono
    )
    raw_va = booster.booster_.predict(matrix(va, names), raw_score=True)
    cal = calibration_rows_for(frame, split, names, booster, raw_va, settings, params=params, seed=seed)
    calibrator, report = choose_calibrator(cal.raw, cal.y, cal.groups)
    report["periods"], report["rows"] = cal.periods, cal.rows
    pacing = PacingBaseline().fit(tr, y_tr)
    logistic = LogisticBaseline(names, seed=seed).fit(tr, y_tr, va, y_va)
    spec = build_spec(names, settings, meta={})
    return Fitted(names, spec, booster, calibrator, report, pacing, logistic)


# -- helpers -----------------------------------------------------------------------------------
def git_commit(root: Path | None = None) -> str | None:
    """The commit of the code that trains, or None (no git, no commits, not a checkout)."""
    sha = _git(root, "rev-parse", "HEAD")
    return sha if sha is not None and re.fullmatch(r"[0-9a-f]{40}", sha) else None


def git_dirty(root: Path | None = None) -> bool | None:
    """True when tracked files differ from the commit (the run's code is not what the commit holds);
    None outside a git checkout."""
    out = _git(root, "status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out)


def _git(root: Path | None, *args: str) -> str | None:
    root = root or Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def data_fingerprint(source) -> str | None:
    """SHA-256 over a data folder's contract files (names and bytes; the service's batch jobs compute
    the same `data_digest`), or None for a Spark URI or catalog. MLflow's dataset digest hashes only
    the first 10,000 snapshot rows, so it can miss a change in a larger organisation."""
    from features.io import folder_digest

    if isinstance(source, str) or not Path(source).is_dir():
        return None
    return folder_digest(source)


def _metric_key(*parts) -> str:
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", "_".join(str(p) for p in parts))


@dataclass
class Evaluated:
    """A fitted challenger and its held-out evaluation: what the MLflow run logs."""

    fs: object  # features.build.FeatureSet
    frame: pd.DataFrame
    split: TimeSplit
    split_info: dict
    fitted: Fitted
    shipped: RepRadarModel
    paths: dict
    test: pd.DataFrame
    preds: dict
    metrics: pd.DataFrame
    has_oracle: bool


@dataclass
class TrainResult:
    run_id: str
    version: str
    model_name: str
    metrics: pd.DataFrame
    split: dict
    calibration: dict
    best_iteration: int
    history_fallback: bool
    card: str
    has_oracle: bool
    notes: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    # the newer version that kept the alias challenger (another training finished first) or is already
    # champion (`newer_alias`); None: this one has the alias challenger
    newer_challenger: str | None = None
    newer_alias: str | None = None
    # a newer version whose training was still running: it takes the alias when it ends
    newer_training: str | None = None

    def worse_than_pacing(self) -> str | None:
        """What the report says (reporting.modelinfo.pacing_comparison) when, on the held-out period, the
        model ranked worse and was less accurate than the pacing rule; None otherwise."""
        from reporting.modelinfo import pacing_comparison, week_metrics
        from training.evaluate import comparison_table

        return pacing_comparison(
            comparison_table(self.metrics).reset_index(),
            self.split.get("test_window"),
            week_metrics(self.metrics),
        )

    def summary_lines(self) -> list[str]:
        from training.evaluate import comparison_table

        if self.newer_challenger is not None and self.newer_alias == "champion":
            alias = (
                f"not challenger: version {self.newer_challenger}, registered after it by a training that ran "
                "at the same time, is already champion"
            )
        elif self.newer_challenger is not None:
            alias = (
                f"not challenger: version {self.newer_challenger}, registered after it by a training that ran "
                "at the same time, holds the alias"
            )
        elif self.newer_training is not None:
            alias = (
                f"alias challenger for now: another training, still running ({self.newer_training}), takes "
                "the alias if it finishes"
            )
        else:
            alias = "alias challenger"
        lines = [
            f"registered {self.model_name} version {self.version} ({alias}), MLflow run {self.run_id}",
            f"train {self.split['train_window']} | validation {self.split['valid_window']} | held-out {self.split['test_window']}",
            f"{self.best_iteration} trees; calibrator {self.calibration['chosen']}; history fallback: {'yes' if self.history_fallback else 'no'}",
        ]
        for title, kw in (
            ("held-out, overall", {}),
            (f"held-out, week {REPORT_WEEK}", {"scope": "week", "group": str(REPORT_WEEK)}),
        ):
            t = comparison_table(self.metrics, **kw)
            if t.empty:
                continue
            lines.append(f"{title}:")
            lines.append(f"  {'':10s} {'AUC':>7s} {'PR-AUC':>7s} {'Brier':>7s} {'ECE':>7s} {'top10%':>7s}")
            for name, r in t.iterrows():
                lines.append(
                    f"  {name:10s} {r['auc']:7.4f} {r['pr_auc']:7.4f} {r['brier']:7.4f} {r['ece']:7.4f} {r['top10_precision']:7.4f}"
                )
        if worse := self.worse_than_pacing():
            lines.append(
                f"warning: {worse}; `repradar promote` compares it with the champion, not with the pace"
            )
        lines += [f"caveat: {c}" for c in self.caveats]
        if self.newer_challenger is None and self.newer_training is None:
            lines.append("next: `repradar promote` runs the gate and makes it champion if it is not worse")
        else:
            if self.newer_alias == "champion":
                plain = f"version {self.newer_challenger} is champion: this version would replace a newer one"
            elif self.newer_challenger is not None:
                plain = f"a plain `repradar promote` takes the challenger, version {self.newer_challenger}"
            else:
                plain = "a plain `repradar promote` takes the challenger, the other training's version if it finishes"
            lines.append(
                f"next: `repradar promote --version {self.version}` runs the gate for this version and makes it "
                f"champion if it is not worse ({plain})"
            )
        return lines


# -- the command -------------------------------------------------------------------------------
def train(
    data_dir, settings, *, params: dict | None = None, every_days: int | None = None, seed: int | None = None
) -> TrainResult:
    """Train, evaluate, log and register one challenger from a contract folder."""
    from features.build import build_training_set
    from features.io import load_folder

    playbook = preflight(settings, params)  # before minutes of feature building
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(
            f"data folder {str(data_dir)!r} does not exist; pass --data with a folder of contract tables"
        )
    step(f"reading and validating {data_dir}")
    tables = load_folder(data_dir)
    every = every_days or settings.snapshot_every_days
    step(f"building training snapshots (every {every} days, as of each day)")
    fs = build_training_set(tables, every_days=every, miss_threshold=settings.miss_threshold)
    return train_feature_set(
        fs,
        settings,
        source=data_dir,
        oracle=load_oracle(data_dir),
        params=params,
        seed=seed,
        every_days=every,
        playbook=playbook,
    )


def snapshot_schema(frame: pd.DataFrame):
    """The MLflow schema of a snapshot frame, as `mlflow.types.utils._infer_schema` gives it, computed a
    column at a time: MLflow tests every value in Python for missing ones (17 s on 141k snapshots)."""
    from mlflow.types.schema import ColSpec, Schema
    from mlflow.types.utils import _infer_pandas_column

    return Schema(
        [
            ColSpec(type=_infer_pandas_column(frame[c]), name=c, required=not bool(frame[c].isna().any()))
            for c in frame.columns
        ]
    )


def logged_dataset(frame: pd.DataFrame, source: str, name: str, targets: str):
    """`mlflow.data.from_pandas` with its schema from `snapshot_schema` (the dataset's `schema` is a
    cached property that MLflow would otherwise compute when the dataset is logged)."""
    import mlflow.data

    ds = mlflow.data.from_pandas(frame, source=source, name=name, targets=targets)
    ds.__dict__["schema"] = snapshot_schema(frame)
    return ds


def preflight(settings, params: dict | None = None):
    """What training can refuse before reading any data: the `--param` overrides, the MLflow addresses
    and the playbook (`REPRADAR_PLAYBOOK` or the default), which is returned: the model bundles it."""
    from models.playbook import load_playbook, playbook_override
    from models.registry import check_addresses, configure, moved_from, moved_home_message, store_exists
    from training.booster import check_params

    check_params(params)
    check_addresses(settings)  # where the run goes, before minutes of work that could not be logged
    if store_exists(settings) and (old := moved_from(settings, configure(settings))):
        raise UserError(moved_home_message(settings, old))  # the run's files would go to another home
    playbook = load_playbook(playbook_override(settings))
    for w in playbook.warnings:  # said before the model bundles the file, not first at its scoring
        step(f"warning: {w}")
    return playbook


def train_feature_set(
    fs,
    settings,
    *,
    source,
    oracle: pd.DataFrame | None = None,
    params: dict | None = None,
    seed: int | None = None,
    every_days: int | None = None,
    playbook=None,
) -> TrainResult:
    """Everything after the feature build: split, fit, evaluate, log, register. `playbook`: what
    `preflight` returned, when the caller ran it before the build (else it runs here, before fitting)."""
    if playbook is None:
        playbook = preflight(settings, params)
    source = str(source) if is_uri(source) else Path(source)  # a Spark source stays as written
    frame = fs.frame.sort_values(KEYS, kind="mergesort").reset_index(drop=True)
    if frame.empty:
        raise UserError(
            "no finished quota period with an active rep: nothing to train on; export more history"
        )
    names = model_features(fs)
    split = time_split(frame, n_test=settings.test_periods, n_valid=1)
    check_outcomes(frame, split, settings.min_misses)
    seed = settings.seed if seed is None else seed

    step(
        f"fitting the model and its baselines on {int(split.train.sum()):,} snapshot rows "
        f"({inputs_summary(names)}); calibrating on up to {settings.calibration_periods} period(s) scored out of time"
    )
    fitted = fit_all(frame, split, names, settings, params=params, seed=seed)
    cal = fitted.calibration
    step(
        f"calibrated ({cal['chosen']}) on {sum(cal['rows']):,} snapshot rows of {len(cal['periods'])} period(s): "
        + ", ".join(cal["periods"])
    )
    split_info = split.describe(frame)
    split_info["reps"] = int(frame["rep_id"].nunique())
    held = frame.loc[split.test].drop_duplicates(["rep_id", "period_start"])
    split_info["test_missed_rep_periods"] = int(held["missed"].astype(bool).sum())
    from training.card import data_caveats

    caveats = data_caveats(split_info)
    fitted.spec.meta = {
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data_window": f"{split_info['train_window'].split('..')[0]}..{split_info['test_window'].split('..')[-1]}",
        **split_info,
        "every_days": every_days or settings.snapshot_every_days,
        "calibrator": fitted.calibration["chosen"],
        "history_fallback": bool(fs.history_fallback),
        "caveats": caveats,
        "seed": seed,
        # the feature definitions the model learnt on: scoring with other ones says to retrain
        "features_sha256": definitions_fingerprint(),
    }

    test = frame[split.test].reset_index(drop=True)
    from models.registry import scratch_dir

    with tempfile.TemporaryDirectory(dir=scratch_dir(settings)) as tmp:
        tmp = Path(tmp)
        paths = write_artifacts(
            tmp / "model", fitted.spec, fitted.booster.booster_, fitted.calibrator, playbook=playbook
        )
        step(f"evaluating the shipped model on the held-out period(s): {int(split.test.sum()):,} rows")
        # Evaluate exactly what is shipped: the model as loaded back from its files.
        shipped = RepRadarModel.from_paths(paths, num_threads=settings.train_num_threads)
        preds = {
            "model": shipped.predict_frame(test)["risk"].to_numpy(),
            "pacing": fitted.pacing.predict_proba(test),
            "logistic": fitted.logistic.predict_proba(test),
        }
        metrics = evaluate(test, preds)
        has_oracle = False
        if oracle is not None:
            o = attach_oracle(test, oracle)
            known = ~np.isnan(o)
            if known.any():
                has_oracle = True
                sub = {k: v[known] for k, v in preds.items()}
                sub["oracle"] = o[known]
                metrics = pd.concat(
                    [metrics, evaluate(test[known].reset_index(drop=True), sub, rows="oracle_rows")]
                )
        metrics = metrics.reset_index(drop=True)
        evaluated = Evaluated(
            fs=fs,
            frame=frame,
            split=split,
            split_info=split_info,
            fitted=fitted,
            shipped=shipped,
            paths=paths,
            test=test,
            preds=preds,
            metrics=metrics,
            has_oracle=has_oracle,
        )
        return _log_and_register(settings, source, evaluated, tmp)


class Stopped(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM stopped training; `run_id` is the MLflow run it ended as KILLED."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.run_id: str | None = None


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _handling(handler):
    """SIGINT and SIGTERM go to `handler` inside the block (main thread only: handlers belong to it)."""
    if not _in_main_thread():
        yield
        return
    before = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, previous in before.items():
            signal.signal(s, previous)


# Signals received inside `stop_on_signals`, oldest first. The handler raises `Stopped` wherever the
# main thread is; when that is a finaliser or a weakref callback (MLflow's and SQLAlchemy's run during
# logging), Python prints the exception as "ignored" and carries on, and the training went on to register
# its version. `stop_if_requested` raises it again at the next stage and before the run's block ends.
_STOPS: list[int] = []


@contextlib.contextmanager
def stop_on_signals():
    """SIGTERM, like SIGINT, raises `Stopped` while training runs, so that the MLflow run is ended as
    KILLED instead of staying RUNNING forever (SIGTERM's default ends the process on the spot)."""

    def stop(signum, frame):
        _STOPS.append(signum)
        raise Stopped(signum)

    def quiet(unraisable):
        # A swallowed stop is remembered in _STOPS and raised again: Python's "Exception ignored in ...
        # Traceback" on stderr would only alarm the user. Anything else goes to the previous hook.
        if not isinstance(unraisable.exc_value, Stopped):
            previous_hook(unraisable)

    previous_hook = sys.unraisablehook
    _STOPS.clear()
    sys.unraisablehook = quiet
    try:
        with _handling(stop):
            yield
    finally:
        sys.unraisablehook = previous_hook
        _STOPS.clear()


def stop_if_requested() -> None:
    """Raise `Stopped` for a signal whose exception a finaliser or callback swallowed (see `_STOPS`)."""
    if _STOPS:
        raise Stopped(_STOPS[0])


def step(message: str) -> None:
    """`repradar.progress.step`, after honouring a stop that was swallowed since the last stage."""
    stop_if_requested()
    progress_step(message)


def _signals_held():
    """Ignore SIGINT and SIGTERM while a stopped run is cleaned up: a second Ctrl-C would leave it half done."""
    return _handling(signal.SIG_IGN)


@contextlib.contextmanager
def _nothing_half_done(client, model_name: str, run_id: str):
    """When the run's block fails or is stopped: delete any version registered from the run (its tags or
    alias may be missing) and, when stopped (Ctrl-C, SIGTERM), end the run as KILLED (a failure is left
    to MLflow, which ends it FAILED)."""
    try:
        yield
        stop_if_requested()  # a stop swallowed inside the block still leaves nothing registered
    except BaseException as exc:
        with _signals_held():
            import mlflow

            for mv in client.search_model_versions(f"run_id='{run_id}'"):
                if mv.name == model_name:
                    client.delete_model_version(model_name, mv.version)
            if isinstance(exc, KeyboardInterrupt):
                mlflow.end_run("KILLED")
        if isinstance(exc, Stopped):
            exc.run_id = run_id
        raise


def _label(source) -> str:
    """Where the data came from, as logged: a local folder resolved, a Spark URI or catalog as given."""
    return source if isinstance(source, str) else str(Path(source).resolve())


def _log_and_register(settings, data_dir, evaluated: Evaluated, tmp: Path) -> TrainResult:
    """Log the evaluated challenger's run to MLflow (params, metrics, artifacts, the pyfunc) and register it."""
    e = evaluated
    fs, frame, split, split_info, fitted = e.fs, e.frame, e.split, e.split_info, e.fitted
    shipped, paths, test, preds, metrics, has_oracle = (
        e.shipped,
        e.paths,
        e.test,
        e.preds,
        e.metrics,
        e.has_oracle,
    )
    import mlflow
    from mlflow.entities import Metric
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    from models import registry
    from reporting.modelinfo import CARDS
    from training.card import render_card
    from training.plots import calibration_plot, lead_time_plot, shap_summary_plot

    client = registry.configure(settings)
    exp_id = registry.ensure_experiment(client, settings)
    # A run whose process was SIGKILLed (or whose machine crashed) would stay RUNNING forever.
    for note in registry.end_stale_runs(client, settings):
        step(note)
    commit = git_commit()
    dirty = git_dirty() if commit else None
    fingerprint = data_fingerprint(data_dir)
    from models.playbook import playbook_override

    # Which playbook the model bundles (a retrain with REPRADAR_PLAYBOOK is otherwise indistinguishable).
    pb_file = playbook_override(settings)
    pb_yaml = Path(paths.get("playbook_yaml") or "")
    pb_sha = hashlib.sha256(pb_yaml.read_bytes()).hexdigest() if pb_yaml.is_file() else "unknown"
    caveats = list(fitted.spec.meta.get("caveats", []))
    names = fitted.names
    model_head = headline(metrics)
    week_head = headline(metrics, week=REPORT_WEEK)

    step(f"logging the run to MLflow ({settings.tracking_uri})")
    # The `--param` overrides as given: the lgbm.* parameters mix them with the defaults, and they are
    # what a retrain needs to reproduce the version (with the data, the seed and the settings).
    overrides = json.dumps(fitted.booster.params or {}, sort_keys=True)
    with (
        mlflow.start_run(
            experiment_id=exp_id,
            run_name=f"train {split_info['test_window']}",
            tags=registry.run_owner_tags(),  # which process runs it: registry.end_stale_runs
        ) as run,
        _nothing_half_done(client, settings.model_name, run.info.run_id),
    ):
        run_id = run.info.run_id
        tags = {
            "repradar.data_dir": _label(data_dir),
            "repradar.history_fallback": str(bool(fs.history_fallback)).lower(),
            "repradar.calibrator": fitted.calibration["chosen"],
            "git_commit": commit or "unknown",
            "git_dirty": "unknown" if dirty is None else str(dirty).lower(),
            "repradar.data_sha256": fingerprint or "unknown",
            "repradar.playbook": str(pb_file.resolve()) if pb_file else "default (models/playbook.yaml)",
            "repradar.playbook_sha256": pb_sha,
            "repradar.param_overrides": overrides,
            "repradar.currency": fitted.spec.currency,
            "repradar.features_sha256": fitted.spec.meta["features_sha256"],
            **({"data_caveat": "; ".join(caveats)[:4000]} if caveats else {}),
        }
        if commit:
            tags["mlflow.source.git.commit"] = commit
        mlflow.set_tags(tags)
        params = {f"lgbm.{k}": v for k, v in fitted.booster.params_.items() if k != "monotone_constraints"}
        params.update(
            {
                "best_iteration": fitted.booster.best_iteration_,
                "seed": fitted.spec.meta["seed"],
                "n_features": len(names),
                "n_monotone": sum(1 for n in names if fitted.spec.monotone[n] != 0),
                "calibrator": fitted.calibration["chosen"],
                "calibration_periods": settings.calibration_periods,
                "calibration_windows": ",".join(fitted.calibration.get("periods", [])),
                "every_days": fitted.spec.meta["every_days"],
                "test_periods": settings.test_periods,
                "miss_threshold": settings.miss_threshold,
                "history_fallback": bool(fs.history_fallback),
                **{f"split.{k}": v for k, v in split_info.items()},
            }
        )
        mlflow.log_params(
            {k: (json.dumps(v) if isinstance(v, list | dict) else v) for k, v in params.items()}
        )

        source = _label(data_dir)
        for ctx, mask in (("training", split.train), ("validation", split.valid), ("test", split.test)):
            ds = logged_dataset(frame[mask].reset_index(drop=True), source, f"snapshots-{ctx}", LABEL)
            mlflow.log_input(ds, context=ctx)

        # Metrics: headline figures flat; lead-time curve as steps (step = week of period).
        flat = {}
        for _, r in metrics[metrics["scope"] == "overall"].iterrows():
            prefix = "test" if r["rows"] == "heldout" else "oracle_rows"
            for k in ("auc", "pr_auc", "brier", "ece", "top10_precision"):
                if not pd.isna(r[k]):
                    flat[_metric_key(prefix, r["model"], k)] = float(r[k])
        for k, v in model_head.items():
            flat[_metric_key("test", k)] = v
        for k, v in week_head.items():
            flat[_metric_key("test", k, f"week{REPORT_WEEK}")] = v
        for _, r in metrics[(metrics["scope"] == "segment") & (metrics["rows"] == "heldout")].iterrows():
            for k in ("auc", "brier"):
                if not pd.isna(r[k]):
                    flat[_metric_key("segment", r["group"], r["model"], k)] = float(r[k])
        for k in ("platt", "isotonic"):
            flat[f"calibration.{k}.brier"] = fitted.calibration[k]["brier"]
            flat[f"calibration.{k}.log_loss"] = fitted.calibration[k]["log_loss"]
        mlflow.log_metrics(flat)
        now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        steps = [
            Metric(_metric_key("lead", r["model"], k), float(r[k]), now, int(r["group"]))
            for _, r in metrics[(metrics["scope"] == "week") & (metrics["rows"] == "heldout")].iterrows()
            for k in ("auc", "brier")
            if not pd.isna(r[k])
        ]
        for i in range(0, len(steps), 900):
            client.log_batch(run_id, metrics=steps[i : i + 900])

        # Artifacts: evaluation tables, plots, model card, held-out feature set, build notes.
        art = tmp / "artifacts"
        for sub in ("evaluation", "plots", "heldout"):
            (art / sub).mkdir(parents=True, exist_ok=True)
        metrics.to_csv(art / "evaluation" / "metrics.csv", index=False)
        (art / "evaluation" / "calibration.json").write_text(json.dumps(fitted.calibration, indent=1))
        calibration_plot(test[LABEL].to_numpy(), preds, art / "plots" / "calibration.png")
        # The same bins as data, for the dashboard's calibration chart (the lead-time curve is the
        # `lead_*` step metrics above).
        (art / "evaluation" / "calibration_bins.json").write_text(
            json.dumps(calibration_bins(test[LABEL].to_numpy(), preds))
        )
        lead_time_plot(metrics, art / "plots" / "lead_time.png")
        step("explaining held-out rows with SHAP for the run's plots")
        seed = fitted.spec.meta["seed"]  # the run's own seed (`train --seed`), as its other draws
        sample = test.sample(n=2000, random_state=seed) if len(test) > 2000 else test
        contrib = shipped.contributions(sample)
        shap_summary_plot(
            contrib[names].to_numpy(), matrix(sample, names), names, art / "plots" / "shap_summary.png"
        )
        test.to_parquet(art / "heldout" / "heldout_features.parquet", index=False)
        (art / "feature_build.txt").write_text("\n".join(fs.summary_lines()) + "\n")
        # Binned summary of the training rows: the quarterly report's drift reference (reporting/drift.py).
        from reporting.drift import reference_summary

        (art / "drift").mkdir(parents=True, exist_ok=True)
        (art / "drift" / "reference.json").write_text(
            json.dumps(reference_summary(frame[split.train], names))
        )
        facts = dict(
            model_name=settings.model_name,
            run_id=run_id,
            split=split_info,
            spec=fitted.spec,
            metrics=metrics,
            calibration=fitted.calibration,
            best_iteration=fitted.booster.best_iteration_,
            params=fitted.booster.params_,
            history_fallback=bool(fs.history_fallback),
            notes=list(fs.notes or []),
            data_source=source,
            git_commit=commit,
            git_dirty=dirty,
            data_sha256=fingerprint,
            has_oracle=has_oracle,
            week=REPORT_WEEK,
        )
        # one card per language, from the same facts: the report shows the one in its own language
        cards = {lang: render_card(**facts, lang=lang) for lang in CARDS}
        for lang, name in CARDS.items():
            (art / name).write_text(cards[lang], encoding="utf-8")
        card = cards["en"]
        # Do the playbook's suggestions answer the simulator's hidden causes? (only with truth/)
        from training.cause_match import log_run

        log_run(data_dir, test, shipped, settings, art / "evaluation")
        mlflow.log_artifacts(str(art))

        step("logging and registering the model")
        # The model: one pyfunc with spec, booster text, calibrator JSON and the playbook.
        X_example = test[names].head(5).apply(pd.to_numeric, errors="coerce").astype("float64")
        # Every input is required (the model refuses a frame without one), whether or not the example
        # rows happen to hold a NaN in it (infer_signature would then call the column optional).
        signature = ModelSignature(
            inputs=Schema([ColSpec("double", n) for n in names]),
            outputs=infer_signature(X_example, shipped.predict(None, X_example)).outputs,
        )
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=RepRadarModel(num_threads=settings.train_num_threads),
            artifacts=paths,
            signature=signature,
            input_example=X_example,
            pip_requirements=PIP_REQUIREMENTS,
        )

        # Registered inside the run: the run ends FINISHED only with its version complete (tags, alias).
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            mv = mlflow.register_model(info.model_uri, settings.model_name)  # prints a line we do not want
        version_tags = {
            "run_id": run_id,
            "data_window": fitted.spec.meta["data_window"],
            "test_window": split_info["test_window"],
            "calibrator": fitted.calibration["chosen"],
            "history_fallback": str(bool(fs.history_fallback)).lower(),
            "git_commit": commit or "unknown",
            "git_dirty": "unknown" if dirty is None else str(dirty).lower(),
            "data_sha256": fingerprint or "unknown",
            "playbook_sha256": pb_sha,
            "seed": str(fitted.spec.meta["seed"]),
            "param_overrides": overrides,
            # the currency of the amounts the model learnt from (the spec's), for `repradar models`
            "currency": fitted.spec.currency,
            # the feature definitions it learnt on, for `repradar models` without loading the model
            "features_sha256": fitted.spec.meta["features_sha256"],
            **({"data_caveat": "; ".join(caveats)[:4000]} if caveats else {}),
            **{
                f"test_{k}": f"{v:.6f}"
                for k, v in model_head.items()
                if k in ("auc", "brier", "pr_auc", "ece")
            },
            **{
                f"test_{k}_week{REPORT_WEEK}": f"{v:.6f}"
                for k, v in week_head.items()
                if k in ("auc", "brier")
            },
        }
        for k, v in version_tags.items():
            client.set_model_version_tag(settings.model_name, mv.version, k, v)
        claim = claim_challenger(client, settings, str(mv.version), run_id)
    return TrainResult(
        run_id=run_id,
        version=str(mv.version),
        model_name=settings.model_name,
        metrics=metrics,
        split=split_info,
        calibration=fitted.calibration,
        best_iteration=fitted.booster.best_iteration_,
        history_fallback=bool(fs.history_fallback),
        card=card,
        has_oracle=has_oracle,
        notes=list(fs.notes or []),
        caveats=caveats,
        newer_challenger=claim.newer_version,
        newer_alias=claim.newer_alias,
        newer_training=claim.other_training,
    )


class Claim(NamedTuple):
    """What `claim_challenger` found: a newer version that keeps its alias instead of this one
    (`newer_version`, holding `newer_alias`: challenger, or champion once promoted), and another training
    still running that takes the alias when it ends ("version N" once registered, else "MLflow run R")."""

    newer_version: str | None = None
    newer_alias: str | None = None
    other_training: str | None = None


def claim_challenger(client, settings, version: str, run_id: str | None = None) -> Claim:
    """Give `version` the alias challenger, unless a newer version holds it (registered by a training that
    overlapped this one and finished first) or is already champion (promoted while this one was training:
    the older version as challenger would make a plain `promote` a rollback). The newest training wins
    whichever order they finish in, and each says truly where the aliases are. `run_id`: this training's
    own run."""
    from models import registry
    from models.locking import alias_lock

    name = settings.model_name
    with alias_lock(settings, "registering its challenger"):
        for alias in (registry.CHALLENGER, registry.CHAMPION):
            holder = registry.version_by_alias(client, name, alias)
            if holder is not None and int(holder.version) > int(version):
                return Claim(str(holder.version), alias)
        client.set_registered_model_alias(name, registry.CHALLENGER, version)
    return Claim(other_training=_other_training(client, settings, run_id))


def _other_training(client, settings, run_id: str | None) -> str | None:
    """Another training of the experiment still running (its run RUNNING, started by a repradar that tags
    its process, not found dead by the stale-run check): "version N" once it registered, else "MLflow run R"."""
    from models import registry

    exp = client.get_experiment_by_name(settings.experiment_name)
    if exp is None:
        return None
    here = registry.run_owner_tags()
    for run in client.search_runs(
        [exp.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=100
    ):
        tags = run.data.tags
        if run.info.run_id == run_id or registry.RUN_PID_TAG not in tags:
            continue  # this training, or a run of an older repradar, likely left over
        if registry.stale_reason(tags, here) is not None:
            continue
        versions = [
            mv
            for mv in client.search_model_versions(f"run_id='{run.info.run_id}'")
            if mv.name == settings.model_name
        ]
        return f"version {versions[0].version}" if versions else f"MLflow run {run.info.run_id}"
    return None
