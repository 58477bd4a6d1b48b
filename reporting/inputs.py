"""Checks of what `report` and `alerts` are given, run before any slow work.

- An intervention log passed in (`repradar report --interventions FILE`, or a frame given to
  `build_report`) is checked by the data contract's own validator for the `interventions` table
  (`features.validation`, the code `repradar validate` runs): required columns, catalog ids,
  dates that parse, `ended_on >= started_on`, and, once the data folder is loaded, that every
  `rep_id` is a rep of it. A log breaking a rule is refused (`ContractError`, a `UserError`: exit 2)
  with the table, the column, the rule and the first rows, numbered as in the file.
- A scores file must come from one model version: the report describes one model (see
  `check_model_versions`).
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

    def check_reps(self, reps: pd.DataFrame) -> None:
        """Refuse rep ids that are not reps of the data folder (rule 'exists in reps.rep_id')."""
        from features import validation as v
        from features.contract import TABLES

        if self._checked is None or reps is None or "rep_id" not in reps.columns:
            return
        spec = TABLES["interventions"]
        known = v.CheckedTable(raw=reps, typed=reps[["rep_id"]].astype({"rep_id": "str"}), unparsed={})
        failures = v.cross_table_failures(spec, {spec.name: self._checked, "reps": known})
        if failures:
            raise _refusal(self.source, failures, "pass the log of this data folder's organisation")


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


def _validate(path: Path, source: str) -> InterventionLog:
    """The contract validator on one file (never a traceback: its failures become a refusal)."""
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
    if failures or checked is None:
        raise _refusal(source, failures)
    frame = v.coerce_table(spec, checked.raw)
    return InterventionLog(frame=frame, source=source, warnings=list(report.warnings), _checked=checked)


def read_intervention_log(path: Path, *, flag: str = "--interventions") -> InterventionLog:
    """Read and check an intervention log file (CSV or Parquet, the contract's `interventions` columns)."""
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
    return _validate(path, source)


def check_intervention_frame(log: pd.DataFrame, *, source: str = "the intervention log") -> InterventionLog:
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
        return _validate(path, source)


def as_intervention_log(log, *, source: str = "the intervention log") -> InterventionLog | None:
    """A checked log from a checked log, a frame or None."""
    if log is None or isinstance(log, InterventionLog):
        return log
    if isinstance(log, pd.DataFrame):
        return check_intervention_frame(log, source=source)
    raise UserError(f"{source}: pass a pandas DataFrame with the columns rep_id, intervention, started_on")


def check_model_versions(scores: pd.DataFrame) -> str:
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
        f"the scores file mixes model versions ({'; '.join(parts)}). The report describes one model "
        "(its drift reference, its held-out calibration, effects scored with it, its card), and risks "
        "of different models are not one scale: score the organisation with one version "
        "(`repradar score --data DIR --as-of DATE --out FILE` uses the champion) and report on that file."
    )
