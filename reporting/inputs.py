"""Checks of what `report` and `alerts` are given, run before any slow work.

- An intervention log passed in (`repradar report --interventions FILE`, or a frame given to
  `build_report`) is checked by the data contract's own validator for the `interventions` table
  (`features.validation`, the code `repradar validate` runs): required columns, catalog ids,
  dates that parse, `ended_on >= started_on`, and that every `rep_id` is a rep of the data folder
  (checked in the same pass when the folder's reps are given, so one refusal names every broken
  rule). A log breaking a rule is refused (`ContractError`, a `UserError`: exit 2)
  with the table, the column, the rule and the first rows, numbered as in the file.
- A scores file must come from one model version: the report describes one model (see
  `check_model_versions`); `alerts` refuses such a file too (reporting.alerts.check_batch).
- ... and from this installation's model: its `model_name` and the MLflow run it names
  (`model_run_id`) must be those of the registered version (see `check_model_run`); an older file
  without the run id is described with a note that it could not be verified.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from repradar.errors import ContractError, UserError

LOG_SUFFIXES = (".csv", ".parquet")


@dataclass
class InterventionLog:
    """A checked intervention log: the typed contract table, where it came from, its warnings."""

    frame: pd.DataFrame
    source: str
    warnings: list[str] = field(default_factory=list)
    _checked: object = None  # the validator's view of the file, for the check against reps
    reps_checked: bool = False  # its rep ids were checked against the data folder's reps already

    def check_reps(self, reps: pd.DataFrame) -> None:
        """Refuse rep ids that are not reps of the data folder (rule 'exists in reps.rep_id')."""
        if self.reps_checked:
            return
        failures = _rep_failures(self._checked, reps)
        if failures:
            raise _refusal(self.source, failures, REPS_HINT)
        self.reps_checked = reps is not None


REPS_HINT = "pass the log of this data folder's organisation"


def _rep_failures(checked, reps: pd.DataFrame | None) -> list:
    """The log's rep ids that are not reps of the data folder (the validator's cross-table rule)."""
    from features import validation as v
    from features.contract import TABLES

    if checked is None or reps is None or "rep_id" not in reps.columns:
        return []
    spec = TABLES["interventions"]
    known = v.CheckedTable(raw=reps, typed=reps[["rep_id"]].astype({"rep_id": "str"}), unparsed={})
    return v.cross_table_failures(spec, {spec.name: checked, "reps": known})


def _refusal(source: str, failures: list, hint: str = "fix the file") -> ContractError:
    lines = [f"{source} breaks the data contract's interventions table: {len(failures)} violation(s):"]
    lines += [f"  - {f}" for f in failures]
    lines.append(_rows_note())
    lines.append(f"Nothing was written; {hint}, then run the report again.")
    return ContractError(failures, message="\n".join(lines))


def _rows_note() -> str:
    """How the validator numbers rows (its own note, so the two never disagree)."""
    from features import validation as v

    return v.ROWS_NOTE


def _validate(path: Path, source: str, reps: pd.DataFrame | None = None) -> InterventionLog:
    """The contract validator on one file (never a traceback: its failures become a refusal).

    With `reps` (the data folder's), the rep ids are checked in the same pass, so a refusal names
    every broken rule at once: the file's own rules and, on the rows that could be read, unknown reps.
    """
    from features import validation as v
    from features.contract import TABLES

    spec = TABLES["interventions"]
    report = v.ValidationReport(folder=path.parent)
    failures: list = []
    checked = None
    try:
        checked = v.check_table(spec, path, report, failures)
    except Exception as exc:  # the validator's surprise must not reach the user as a traceback
        failures.append(
            v.Failure(spec.name, None, v.RULE_CHECKED, 0, [], f"the checks could not run: {exc!r}")
        )
    own = len(failures)
    try:
        failures += _rep_failures(checked, reps)
    except Exception as exc:  # as above
        failures.append(
            v.Failure(spec.name, "rep_id", v.RULE_CHECKED, 0, [], f"the rep check could not run: {exc!r}")
        )
    if failures or checked is None:
        raise _refusal(source, failures, REPS_HINT if not own and failures else "fix the file")
    frame = v.coerce_table(spec, checked.raw)
    return InterventionLog(
        frame=frame,
        source=source,
        warnings=list(report.warnings),
        _checked=checked,
        reps_checked=reps is not None,
    )


def folder_reps(folder) -> pd.DataFrame | None:
    """A data folder's reps table read alone (no contract check: that is `load_folder`'s), for the
    log's rep check; None when there is none to read (the folder's own check says why, later)."""
    from features.io import read_raw, table_path

    try:
        path = table_path(Path(folder), "reps")
        raw = read_raw(path) if path is not None else None
    except Exception:  # an unreadable folder is reported by the folder's check, not here
        return None
    return raw if raw is not None and "rep_id" in raw.columns else None


def read_intervention_log(
    path: Path,
    *,
    flag: str = "--interventions",
    reps: pd.DataFrame | None = None,
    data_dir: Path | None = None,
) -> InterventionLog:
    """Read and check an intervention log file (CSV or Parquet, the contract's `interventions` columns);
    with `reps` (or the reps table of `data_dir`), also that its rep ids are reps of the data folder,
    in the same pass: one refusal names every broken rule."""
    path = Path(path)
    source = f"{flag} {path}"
    if not path.exists():
        raise UserError(f"{source}: no such file")
    if path.is_dir():
        raise UserError(f"{source} is a folder: pass the log file (CSV or Parquet)")
    if path.suffix not in LOG_SUFFIXES:
        raise UserError(
            f"{source}: name the log .csv or .parquet (the contract's interventions table: "
            "rep_id, intervention, started_on, ended_on)"
        )
    if reps is None and data_dir is not None:
        reps = folder_reps(data_dir)
    return _validate(path, source, reps)


def check_intervention_frame(
    log: pd.DataFrame, *, source: str = "the intervention log", reps: pd.DataFrame | None = None
) -> InterventionLog:
    """Check a log given as a frame (`build_report(..., interventions=frame)`): the same validator,
    on the frame written to a temporary Parquet file (rows numbered as the validator numbers Parquet)."""
    import pyarrow as pa

    frame = log.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    with tempfile.TemporaryDirectory(prefix="repradar-log-") as tmp:
        path = Path(tmp) / "interventions.parquet"
        try:
            frame.to_parquet(path, index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise UserError(
                f"{source} cannot be checked: a column mixes types ({exc}); give each column one type "
                "(text ids, dates as dates or YYYY-MM-DD text)"
            ) from None
        return _validate(path, source, reps)


def as_intervention_log(
    log, *, source: str = "the intervention log", reps: pd.DataFrame | None = None
) -> InterventionLog | None:
    """A checked log from a checked log, a frame or None (with `reps`: its rep ids checked too)."""
    if log is None:
        return None
    if isinstance(log, InterventionLog):
        log.check_reps(reps)
        return log
    if isinstance(log, pd.DataFrame):
        return check_intervention_frame(log, source=source, reps=reps)
    raise UserError(f"{source}: pass a pandas DataFrame with the columns rep_id, intervention, started_on")


REPORT_ONE_MODEL = (
    "The report describes one model (its drift reference, its held-out calibration, effects scored with "
    "it, its card), and risks of different models are not one scale"
)


def check_model_versions(scores: pd.DataFrame, *, why: str = REPORT_ONE_MODEL) -> str:
    """The one model version of the scores, or a refusal.

    The report describes one model: drift compares the scores' features with *its* training data,
    the calibration per group is *its* held-out set, the intervention effects are scored with *it*
    and the model section is *its* card and metrics; risks and bands of two models are not one
    scale either. A file mixing versions (two batches concatenated) would be described as if it
    came from one of them, so it is refused, with the versions and their row counts.
    """
    if "model_version" not in scores.columns:
        return ""
    v = scores["model_version"]
    missing = int(v.isna().sum())
    counts = v.dropna().astype(str).value_counts()
    if len(counts) <= 1 and not missing:
        return str(counts.index[0]) if len(counts) else ""
    parts = [f"version {k}: {n} row(s)" for k, n in sorted(counts.items())]
    if missing:
        parts.append(f"no version: {missing} row(s)")
    raise UserError(
        f"the scores file mixes model versions ({'; '.join(parts)}). {why}: score the organisation with "
        "one version (`repradar score --data DIR --as-of DATE --out FILE` uses the champion) and use that file."
    )


def repeated_reps(scores: pd.DataFrame) -> tuple[list[str], str]:
    """The rep ids a scores frame (with `rep_id`) holds more than once, sorted, and " over N as-of
    days" when the frame spans several days (else ""), for the messages that refuse it."""
    reps = scores["rep_id"].astype(str)
    dup = sorted(reps[reps.duplicated()].unique().tolist())
    n_days = scores["as_of"].nunique() if "as_of" in scores.columns else 1
    return dup, (f" over {n_days} as-of days" if n_days > 1 else "")


def check_one_score_per_rep(scores: pd.DataFrame) -> None:
    """Refuse a scores file holding a rep more than once (two batches of one model concatenated,
    several as-of days): the report counts rows as reps, so every count, share and group size of the
    summary and the fairness audit would be doubled for them, and a doubled group can look
    "statistically significant" by its size alone."""
    if "rep_id" not in scores.columns:
        return
    dup, days = repeated_reps(scores)
    if not dup:
        return
    raise UserError(
        f"the scores file holds {len(dup)} rep(s) more than once{days} (e.g. {', '.join(dup[:5])}): the "
        "report would count each of them twice, in the summary and in the fairness audit's groups. Report "
        "on one batch: the file `repradar score --data DIR --as-of DATE --out FILE` writes."
    )


REPORT_MISSING_REPS = "the report would audit them without their teams or attributes"


def check_scores_reps_in_data(
    scores: pd.DataFrame, reps: pd.DataFrame | None, *, why: str = REPORT_MISSING_REPS
) -> None:
    """Refuse scores naming reps the data folder's `reps` table lacks: the scores and the data are of
    different organisations or exports (the wrong `--data`). The report takes teams, regions and every
    audited attribute from that table, so such reps would be audited as '(missing)' and the fairness
    audit would say nothing while looking done; `alerts --data` takes the reps' names from it (`why`:
    what would go wrong, for the message)."""
    if reps is None or "rep_id" not in scores.columns or "rep_id" not in reps.columns:
        return
    scored = pd.Index(scores["rep_id"].astype(str).unique())
    absent = sorted(scored.difference(pd.Index(reps["rep_id"].astype(str))).tolist())
    if not absent:
        return
    raise UserError(
        f"{len(absent)} of the {len(scored)} scored rep(s) are not in the data folder's reps table "
        f"(e.g. {', '.join(absent[:5])}): the scores were made from another export or organisation, and "
        f"{why}. Pass as --data the folder the scores were made from."
    )


def scores_run_id(scores: pd.DataFrame) -> str | None:
    """The MLflow run id the scores carry (column `model_run_id`), or None when the file cannot tell
    (written before the column existed, or by a model that was not loaded from a registry).
    A file naming several runs mixes models and is refused, as a file mixing versions is."""
    from models.scoring import RUN_ID_COLUMN

    if RUN_ID_COLUMN not in scores.columns:
        return None
    runs = sorted({str(r) for r in scores[RUN_ID_COLUMN].dropna() if str(r).strip()})
    if len(runs) > 1:
        raise UserError(
            f"the scores file mixes models of {len(runs)} MLflow runs ({', '.join(runs)}): score the "
            "organisation with one version (`repradar score --data DIR --as-of DATE --out FILE`) and "
            "report on that file."
        )
    return runs[0] if runs else None


def check_model_run(scores: pd.DataFrame, *, name: str, version: str, run_id: str | None, home) -> str | None:
    """Refuse scores made by another model than this installation's version `version` of `name`.

    Version numbers are per installation: two installations both have a "version 1", different
    models. The scores file names the model (`model_name`) and the MLflow run that trained it
    (`model_run_id`); when either differs from this installation's, the report would describe another
    model (its card, drift reference, calibration, effects), so the file is refused. A file without
    the run id (older files) cannot be checked: the returned note says so, for stderr and the report.
    """
    names = sorted({str(n) for n in scores["model_name"].dropna()}) if "model_name" in scores.columns else []
    if names and names != [str(name)]:
        raise UserError(
            f"the scores were made by model {' and '.join(repr(n) for n in names)}, but this installation "
            f"({home}) reports on model {name!r}: set REPRADAR_HOME to the installation that scored them"
        )
    scored_by = scores_run_id(scores)
    if scored_by is None:
        from models.i18n import Message

        return Message("report.note.unverified", name=repr(name), version=version, home=home)
    if scored_by != (str(run_id) if run_id else None):
        ours = f"run {run_id}" if run_id else "a version with no training run"
        raise UserError(
            f"the scores were made by {name!r} version {version} of MLflow run {scored_by}, but version "
            f"{version} in this installation ({home}) is {ours}: another model with the same "
            "number, from another installation. Set REPRADAR_HOME to the installation that scored the "
            "file, or score the data here (`repradar score --data DIR --as-of DATE --out FILE`)."
        )
    return None
