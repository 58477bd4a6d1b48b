"""Batch scoring: the scores file of shared/spec/outputs.md, from contract tables and a loaded model."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from models.bands import risk_band
from models.currency import DEFAULT_CURRENCY
from repradar.errors import UserError
from repradar.files import replacing
from repradar.progress import step

SCORE_COLUMNS = [
    "rep_id",
    "manager_id",
    "period_start",
    "period_end",
    "as_of",
    "risk",
    "risk_band",
    "rank",
    "attainment_to_date",
    "drivers",
    "interventions",
    "model_version",
]
# `model_run_id`: the MLflow run that trained the version (the registry's version numbers are per
# installation; the run id tells two installations' "version 1" apart, see reporting/inputs.py).
RUN_ID_COLUMN = "model_run_id"
# `currency`: the ISO 4217 code the row's amounts and texts are in (the model's, FeatureSpec.currency), so
# that whatever renders the row later (dashboard, digests) writes its amounts as the model did.
EXTRA_COLUMNS = [
    "raw_score",
    "base_value",
    "model_name",
    RUN_ID_COLUMN,
    "team",
    "region",
    "segment",
    "currency",
]
# From the playbook (models/playbook.py, docs/playbook.md); `drivers` also gain peer_value, text_en, text_zh.
ACTION_COLUMNS = [
    "intervention_reasons",
    "driver_groups",
    "quota_share",
    "insufficient_data",
    "peer_scope",
    "recourse",
    "notes",
]
NESTED_COLUMNS = ["drivers", "interventions", "intervention_reasons", "driver_groups", "recourse", "notes"]
DATE_COLUMNS = ["period_start", "period_end", "as_of"]


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, pd.Timestamp):
        return value.date()
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise UserError(f"as-of date {value!r} is not a date; write it as YYYY-MM-DD") from exc


def _playbook(settings, playbook=None):
    """The playbook to score with: the argument, else the operator's file (setting or
    $REPRADAR_PLAYBOOK), else None (the one bundled with the model)."""
    from models.playbook import Playbook, load_playbook, playbook_override

    if isinstance(playbook, Playbook):
        return playbook
    path = playbook if playbook is not None else playbook_override(settings)
    return load_playbook(path) if path is not None else None


def model_run_id(model, settings) -> str | None:
    """The MLflow run that trained `model`: its own `run_id` when it carries one, else the run of its
    registered version (`model.name`, `model.version`) in this installation's registry, the one it was
    loaded from (a version's run never changes). None when that cannot be told: a model that was not
    loaded from a registry (tests), or no registry."""
    rid = getattr(model, "run_id", None)
    if rid:
        return str(rid)
    from mlflow.exceptions import MlflowException

    from models import registry

    try:
        if not registry.store_exists(settings):
            return None
        mv = registry.get_version(registry.configure(settings), str(model.name), str(model.version))
    except (MlflowException, OSError):
        return None
    return str(mv.run_id) if mv is not None and mv.run_id else None


def scores_from_features(frame: pd.DataFrame, model, settings, *, playbook=None) -> pd.DataFrame:
    """Score a feature frame (KEY + META + features, one row per rep) into the scores frame.

    `playbook`: a Playbook or a YAML file overriding the one bundled with the model.
    """
    from models.playbook import option
    from models.pyfunc import MissingFeaturesError

    if frame.empty:
        raise UserError("no rep to score: nobody is employed with a quota period on that day")
    pb = _playbook(settings, playbook)
    try:
        pred = model.pyfunc.predict_frame(
            frame,
            explain=True,
            max_drivers=settings.max_drivers,
            actions=True,
            playbook=pb,
            band_high=settings.band_high,
            min_history_days=option(settings, "min_history_days", 0) or None,
        )
    except MissingFeaturesError as exc:
        raise UserError(
            f"{exc}. The model version {model.version} was trained on other features than this "
            "version of RepRadar builds: retrain (`repradar train`) and promote the new version"
        ) from None
    out = pd.DataFrame(index=frame.index)
    out["rep_id"] = frame["rep_id"].astype("string")
    out["manager_id"] = frame["manager_id"].astype("string")
    for c in DATE_COLUMNS:
        out[c] = pd.to_datetime(frame[c]).astype("datetime64[ns]")
    out["risk"] = pred["risk"].astype(float)
    out["risk_band"] = [risk_band(r, settings.band_high, settings.band_medium) for r in out["risk"]]
    # Rank 1 = highest risk; ties broken by rep id so the order never depends on row order.
    order = sorted(range(len(out)), key=lambda i: (-out["risk"].iat[i], str(out["rep_id"].iat[i])))
    rank = np.empty(len(out), dtype="int64")
    rank[order] = np.arange(1, len(out) + 1)
    out["rank"] = rank
    out["attainment_to_date"] = (
        pd.to_numeric(frame["attainment_to_date"], errors="coerce").astype(float)
        if "attainment_to_date" in frame
        else np.nan
    )
    out["drivers"] = pred["drivers"]
    out["interventions"] = pred["interventions"]
    out["model_version"] = str(model.version)
    out["raw_score"] = pred["raw_score"].astype(float)
    out["base_value"] = pred["base_value"].astype(float)
    out["model_name"] = str(model.name)
    out[RUN_ID_COLUMN] = model_run_id(model, settings)
    out["currency"] = model_currency(model)
    for c in ("team", "region", "segment"):
        out[c] = (
            frame[c].astype("string") if c in frame else pd.Series(pd.NA, index=frame.index, dtype="string")
        )
    for c in ACTION_COLUMNS:
        out[c] = pred[c]
    out = out.sort_values("rank").reset_index(drop=True)
    return out[SCORE_COLUMNS + EXTRA_COLUMNS + ACTION_COLUMNS]


def score_tables(tables, as_of, model, settings, *, playbook=None) -> pd.DataFrame:
    """Scores of every rep employed on `as_of` for the period containing it, with `model`."""
    from features.build import build_scoring_set

    as_of = _as_date(as_of)
    step(f"building features as of {as_of}")
    fs = build_scoring_set(tables, as_of, miss_threshold=settings.miss_threshold)
    if fs.frame.empty:
        raise UserError(
            f"no rep to score on {as_of}: nobody is employed with a quota period containing that day; "
            "check the reps' hire and end dates and the quotas"
        )
    step(f"scoring and explaining {len(fs.frame):,} reps (SHAP, playbook, recourse)")
    out = scores_from_features(fs.frame, model, settings, playbook=playbook)
    out.attrs["notes"] = score_notes(fs, model, settings, playbook=playbook)
    return out


def score_notes(fs, model, settings=None, *, playbook=None) -> list[str]:
    """Notes printed with a scores file: the feature build's, the model's training caveats, a period the
    model was fitted on or one before its data (fitted_note, earlier_period_note), a currency setting
    the model's texts do not follow (currency_note), feature definitions it was not trained on
    (definitions_note), then the playbook's warnings (warning_notes) and rules the data cannot fire."""
    meta = getattr(getattr(model.pyfunc, "spec_", None), "meta", None) or {}
    notes = list(fs.notes or []) + [f"caveat from training: {c}" for c in meta.get("caveats", [])]
    fitted = fitted_note(getattr(fs, "frame", None), model)
    notes += [fitted] if fitted else []
    earlier = earlier_period_note(periods_of(getattr(fs, "frame", None)), meta, model.version)
    notes += [earlier] if earlier else []
    note = currency_note(model_currency(model), getattr(settings, "currency", None), model.version)
    notes += [note] if note else []
    definitions = definitions_note(model)
    notes += [definitions] if definitions else []
    from models.playbook import data_note, warning_notes

    pb = _playbook(settings, playbook) or getattr(model.pyfunc, "playbook_obj_", None)
    rules = data_note(pb, getattr(fs, "frame", None))
    return notes + warning_notes(pb, getattr(fs, "frame", None)) + ([rules] if rules else [])


def definitions_note(model) -> str | None:
    """Why the model's inputs may not mean what it learnt, or None: its spec records feature definitions
    (`features_sha256`) other than those this code computes, so it reads values built differently from
    its training rows. A model trained before the fingerprint was recorded gets None: unknown, not alarmed."""
    from features.registry import definitions_fingerprint

    meta = getattr(getattr(model.pyfunc, "spec_", None), "meta", None) or {}
    trained = meta.get("features_sha256")
    current = definitions_fingerprint()
    if not trained or trained == current:
        return None
    from models.i18n import Message

    # a Message: English for `repradar score` and the job notes, the report's language in its call-out
    return Message(
        "report.note.feature_definitions", version=model.version, trained=trained[:8], current=current[:8]
    )


def fitted_note(frame, model) -> str | None:
    """`fitted_period_note` for the periods of `frame` (columns period_start, period_end: the scored
    features, or a scores file, as `repradar report` reads it) and what `model` was fitted on."""
    periods = periods_of(frame)
    if not periods:
        return None
    meta = getattr(getattr(model.pyfunc, "spec_", None), "meta", None) or {}
    return fitted_period_note(periods, meta, model.version)


def periods_of(frame) -> list:
    """The distinct (period_start, period_end) of a features or scores frame; [] without those columns."""
    if frame is None or not {"period_start", "period_end"} <= set(frame.columns):
        return []
    return list(frame[["period_start", "period_end"]].dropna().drop_duplicates().itertuples(index=False))


def fitted_period_note(periods, meta: dict, version="") -> str | None:
    """Why the scores are not a forecast, or None: a scored period (start, end) lies in the data the model
    was fitted and calibrated on (its spec's `train_window` to the end of `valid_window`), so the model
    knew how it ended. An as-of day typed in the wrong year does that silently; the held-out period and
    later ones are out of sample."""
    train, valid = meta.get("train_window"), meta.get("valid_window")
    if not train or ".." not in str(train):
        return None
    lo = pd.Timestamp(str(train).split("..")[0])
    hi = pd.Timestamp(str(valid or train).split("..")[-1])
    inside = sorted(
        (pd.Timestamp(s), pd.Timestamp(e))
        for s, e in periods
        if pd.Timestamp(e) <= hi and pd.Timestamp(s) >= lo
    )
    if not inside:
        return None
    from models.i18n import Items, Message

    # a Message: English for `repradar score` and the JSON, the report's language in its call-out
    return Message(
        "report.note.fitted_period",
        periods=Items(f"{s:%Y-%m-%d}..{e:%Y-%m-%d}" for s, e in inside[:3]),
        version=version,
        window=f"{lo:%Y-%m-%d}..{hi:%Y-%m-%d}",
    )


def version_fitted_meta(tags: dict) -> dict:
    """What a registered version was fitted and calibrated on, from its tags (its `data_window` begins
    with the training data; its held-out `test_window` begins the day after the validation period), in
    the spec meta's key that `fitted_period_note` reads; {} for a version without those tags. Lets the
    service judge lists of versions it does not serve without loading them."""
    data, test = str(tags.get("data_window") or ""), str(tags.get("test_window") or "")
    if ".." not in data or ".." not in test:
        return {}
    try:
        lo = pd.Timestamp(data.split("..")[0])
        hi = pd.Timestamp(test.split("..")[0]) - pd.Timedelta(days=1)
    except ValueError:
        return {}
    return {"train_window": f"{lo:%Y-%m-%d}..{hi:%Y-%m-%d}"}


def earlier_period_note(periods, meta: dict, version="") -> str | None:
    """Why the scores may come from the wrong model, or None: a scored period ended before the data the
    model was trained on begins (its spec's `train_window`). Another organisation's export scored in the
    demo's home, or the wrong year typed, looks so; the model learnt nothing of that time."""
    train = meta.get("train_window")
    if not train or ".." not in str(train):
        return None
    lo = pd.Timestamp(str(train).split("..")[0])
    hi = str(meta.get("test_window") or meta.get("valid_window") or train).split("..")[-1]
    before = sorted((pd.Timestamp(s), pd.Timestamp(e)) for s, e in periods if pd.Timestamp(e) < lo)
    if not before:
        return None
    shown = ", ".join(f"{s:%Y-%m-%d}..{e:%Y-%m-%d}" for s, e in before[:3])
    return (
        f"the period {shown} ended before the data model version {version} was trained on begins "
        f"({lo:%Y-%m-%d}..{hi}): the model learnt from later years, perhaps of another organisation; if this "
        "data has a model of its own, set REPRADAR_HOME to the home it was trained in (`repradar models` "
        "lists each version's data window)"
    )


def model_currency(model) -> str:
    """The ISO code of the amounts `model` was trained on (USD for a model trained before it was recorded)."""
    spec = getattr(getattr(model, "pyfunc", None), "spec_", None)
    return str(getattr(spec, "currency", None) or DEFAULT_CURRENCY)


def currency_note(trained: str, setting: str | None, version="") -> str | None:
    """Why the scores' texts are not in REPRADAR_CURRENCY, or None when they are.

    The model's currency wins: it is what the amounts the model learned from were in, and amounts are
    never converted, so writing them with another code would relabel figures, not convert them. Scoring
    goes on (the risks do not read the label), and the note says how to make the two agree.
    """
    if not setting or setting == trained:
        return None
    return (
        f"model version {version} was trained on amounts in {trained}, but REPRADAR_CURRENCY is {setting}: "
        f"its texts write amounts in {trained}, as it learned them (amounts are never converted); when the "
        f"data is in {setting}, retrain with REPRADAR_CURRENCY={setting} and promote the new version"
    )


def score_folder(data_dir, as_of, settings, model=None, *, playbook=None) -> pd.DataFrame:
    """Validate and load `data_dir`, then score it with `model` (default: the champion)."""
    from features.build import check_as_of_inside
    from features.io import load_folder
    from models.loading import load_model

    as_of = _as_date(as_of)
    step(f"reading and validating {data_dir}")
    tables = load_folder(data_dir)
    check_as_of_inside(tables, as_of)  # a day outside the data is said before the model loads
    if model is None:
        step("loading the champion model")
    model = model or load_model(settings)
    return score_tables(tables, as_of, model, settings, playbook=playbook)


def _nested_types(df: pd.DataFrame) -> dict:
    """Arrow types of the nested columns (stable, so other tools can rely on them)."""
    import pyarrow as pa

    f64, txt = pa.float64(), pa.string()
    driver_fields = [("feature", txt), ("group", txt), ("value", f64), ("contribution", f64)]
    has_text = "drivers" in df and any(len(v) and "text_en" in v[0] for v in df["drivers"])
    if has_text:  # drivers in words (the playbook's extra keys)
        driver_fields += [("peer_value", f64), ("text_en", txt), ("text_zh", txt)]
    texts = [("text_en", txt), ("text_zh", txt)]
    return {
        "drivers": pa.list_(pa.struct(driver_fields)),
        "interventions": pa.list_(txt),
        "intervention_reasons": pa.list_(pa.struct([("id", txt), ("reason_en", txt), ("reason_zh", txt)])),
        "driver_groups": pa.list_(
            pa.struct(
                [
                    ("group", txt),
                    ("contribution", f64),
                    ("actionable", pa.bool_()),
                    ("feature", txt),
                    ("feature_contribution", f64),
                    ("value", f64),
                    ("peer_value", f64),
                    ("peer_scope", txt),
                    ("title_en", txt),
                    ("title_zh", txt),
                    *texts,
                ]
            )
        ),
        "recourse": pa.struct(
            [
                ("feasible", pa.bool_()),
                ("changes", pa.list_(pa.struct([("feature", txt), ("from", f64), ("to", f64)]))),
                (
                    "levers",
                    pa.list_(
                        pa.struct(
                            [
                                ("lever", txt),
                                ("feature", txt),
                                ("delta", f64),
                                ("from", f64),
                                ("to", f64),
                                ("bound", f64),
                            ]
                        )
                    ),
                ),
                ("risk_before", f64),
                ("risk_after", f64),
                ("bound_quantile", f64),
                ("peer_scope", txt),
                *texts,
            ]
        ),
        "notes": pa.list_(pa.struct([("code", txt), *texts])),
        "insufficient_data": pa.bool_(),
    }


def scores_arrow(df: pd.DataFrame):
    """The scores as an Arrow table with the file's column types (what `write_scores` writes as Parquet)."""
    import pyarrow as pa

    nested = _nested_types(df)
    fields, arrays = [], []
    for c in df.columns:
        s = df[c]
        if c in DATE_COLUMNS:
            typ = pa.date32()
            arr = pa.array([None if pd.isna(v) else pd.Timestamp(v).date() for v in s], type=typ)
        elif c in nested:
            typ = nested[c]
            arr = pa.array(list(s), type=typ, from_pandas=True)
        elif c == "rank":
            typ, arr = pa.int64(), pa.array(s.to_numpy(dtype="int64"), type=pa.int64())
        elif pd.api.types.is_float_dtype(s):
            typ, arr = pa.float64(), pa.array(s.to_numpy(dtype=float), type=pa.float64(), from_pandas=True)
        else:
            typ = pa.string()
            arr = pa.array([None if pd.isna(v) else str(v) for v in s], type=typ)
        fields.append(pa.field(c, typ))
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# A CSV cell starting like this is a formula to a spreadsheet (`=HYPERLINK(...)` in a team name from the
# data): such text is written with a leading apostrophe (the audit export too, `serving.audit.csv_safe`).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(v):
    # text already starting with an apostrophe gets one more, so that `read_scores` takes exactly one off
    return "'" + v if isinstance(v, str) and v.startswith((*FORMULA_START, "'")) else v


def _csv_untext(v):
    return v[1:] if isinstance(v, str) and v.startswith("'") else v


def _csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if c not in DATE_COLUMNS and c not in NESTED_COLUMNS and not pd.api.types.is_numeric_dtype(out[c]):
            out[c] = [_csv_text(v) for v in out[c]]
    for c in DATE_COLUMNS:
        if c in out:
            out[c] = [None if pd.isna(v) else pd.Timestamp(v).date().isoformat() for v in out[c]]
    for c in NESTED_COLUMNS:
        if c in out:
            out[c] = [json.dumps(_plain(v), separators=(",", ":"), ensure_ascii=False) for v in out[c]]
    return out


def _plain(v):
    """Nested values as plain Python (lists, dicts, floats; NaN as None) for JSON and for readers."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [_plain(x) for x in v]
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return None if np.isnan(v) else float(v)
    return v


def write_scores(df: pd.DataFrame, path) -> Path:
    """Write scores as Parquet or CSV (by suffix), whole or not at all: beside the target, then rename."""
    import pyarrow.parquet as pq

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise UserError(f"cannot write scores to {path.name!r}: name the file .parquet or .csv")
    # its own temporary name: two commands writing one path at once must not mix their files
    with replacing(path) as tmp:
        if suffix == ".parquet":
            pq.write_table(scores_arrow(df), tmp)
        else:
            _csv_frame(df).to_csv(tmp, index=False, lineterminator="\n")
    return path


def read_scores(path) -> pd.DataFrame:
    """Read a scores file back (drivers and interventions as Python lists in both formats)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        df = pd.read_parquet(path)
        for c in NESTED_COLUMNS:
            if c in df:
                df[c] = [_plain(v) for v in df[c]]
    else:
        df = pd.read_csv(path, dtype={"rep_id": str, "manager_id": str, "model_version": str})
        for c in df.columns:
            if c not in NESTED_COLUMNS and not pd.api.types.is_numeric_dtype(df[c]):
                df[c] = [_csv_untext(v) for v in df[c]]
        for c in NESTED_COLUMNS:
            if c in df:
                df[c] = [json.loads(v) if isinstance(v, str) else None for v in df[c]]
    missing = [c for c in SCORE_COLUMNS if c not in df.columns]
    if missing:  # another file (a data table, a report's JSON as CSV ...): say which columns it lacks
        raise ValueError(f"it lacks the scores column(s) {', '.join(missing)}")
    for c in DATE_COLUMNS:
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    return df
