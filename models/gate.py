"""The promotion gate: a challenger becomes champion only if it is not worse on the newest held-out data.

Both versions are scored on the challenger's held-out feature set (logged with its training run),
so they are compared on the same, newest rows. The CLI (`repradar promote`) and the service call
`promote`; the decision itself is the pure function `gate_decision`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from models import registry
from models.currency import DEFAULT_CURRENCY
from models.locking import alias_lock
from models.registry import CHALLENGER, CHAMPION
from repradar.errors import Unavailable, UserError

HELDOUT_ARTIFACT = "heldout/heldout_features.parquet"
LABEL = "missed"
HISTORY_TAG = "promotion_history"


@dataclass(frozen=True)
class Figures:
    """One version's figures on the held-out rows."""

    version: str
    auc: float
    brier: float
    n_rows: int
    n_misses: int
    # AUC on the rows of the period's first part (elapsed share at most `early_share`): the weeks an
    # early warning is for. Late rows are nearly decided and flatter the overall AUC. NaN when the
    # rows hold no such part, or only one outcome there; records made before it existed lack it.
    auc_early: float = math.nan
    n_early_rows: int = 0
    early_share: float | None = None


@dataclass
class GateResult:
    promoted: bool
    decision: str  # "first", "passed", "forced", "refused", "already"
    challenger_version: str
    champion_version: str | None
    figures: dict[str, Figures] = field(default_factory=dict)  # "challenger", "champion"
    reasons: list[str] = field(default_factory=list)
    message: str = ""
    dry_run: bool = False  # a check: `decision` is what the gate would decide; nothing was changed

    def to_dict(self) -> dict:
        d = asdict(self)
        d["figures"] = {k: asdict(v) for k, v in self.figures.items()}
        return d


# -- pure parts --------------------------------------------------------------------------------
def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=int)
    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, p))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def figures_for(
    version: str,
    y: np.ndarray,
    risk: np.ndarray,
    elapsed: np.ndarray | None = None,
    early_share: float | None = None,
) -> Figures:
    """AUC and Brier over all rows; with `elapsed` (each row's elapsed share of its period) and
    `early_share`, also the AUC of the rows at most that far into their period."""
    y = np.asarray(y, dtype=int)
    risk = np.asarray(risk, dtype=float)
    early = dict(auc_early=math.nan, n_early_rows=0, early_share=early_share)
    if elapsed is not None and early_share is not None:
        mask = np.asarray(elapsed, dtype=float) <= early_share
        early.update(
            auc_early=roc_auc(y[mask], risk[mask]) if mask.any() else math.nan, n_early_rows=int(mask.sum())
        )
    return Figures(str(version), roc_auc(y, risk), brier(y, risk), int(len(y)), int(y.sum()), **early)


def measure_checks(
    challenger: Figures, champion: Figures, tol_auc: float, tol_brier: float
) -> list[tuple[str, bool]]:
    """(measure, within tolerance): the challenger's AUC at least the champion's minus tol_auc, its
    Brier at most the champion's plus tol_brier, and (when the champion has one) its early-period AUC
    at least the champion's minus tol_auc. NaN never is within tolerance."""
    auc_ok = not math.isnan(challenger.auc) and challenger.auc >= champion.auc - tol_auc
    brier_ok = not math.isnan(challenger.brier) and challenger.brier <= champion.brier + tol_brier
    checks = [("auc", auc_ok), ("brier", brier_ok)]
    if not math.isnan(champion.auc_early):
        early_ok = (
            not math.isnan(challenger.auc_early) and challenger.auc_early >= champion.auc_early - tol_auc
        )
        checks.append(("auc_early", early_ok))
    return checks


def gate_decision(
    challenger: Figures, champion: Figures | None, tol_auc: float, tol_brier: float
) -> tuple[bool, list[str]]:
    """(passes, reasons). Passes when there is no champion, or both `measure_checks` hold."""
    if champion is None:
        return True, ["no champion yet: the first model becomes champion"]
    checks = dict(measure_checks(challenger, champion, tol_auc, tol_brier))
    early = f"AUC in the first {_share(challenger.early_share)} of the period"
    reasons = [
        f"AUC {challenger.auc:.4f} vs champion {champion.auc:.4f} (tolerance {tol_auc:g}): ok"
        if checks["auc"]
        else f"AUC {challenger.auc:.4f} is below the champion's {champion.auc:.4f} by more than {tol_auc:g}",
        f"Brier {challenger.brier:.4f} vs champion {champion.brier:.4f} (tolerance {tol_brier:g}): ok"
        if checks["brier"]
        else f"Brier {challenger.brier:.4f} is above the champion's {champion.brier:.4f} by more than {tol_brier:g}",
    ]
    if "auc_early" in checks:
        reasons.append(
            f"{early} {challenger.auc_early:.4f} vs champion {champion.auc_early:.4f} (tolerance {tol_auc:g}): ok"
            if checks["auc_early"]
            else f"{early} {challenger.auc_early:.4f} is below the champion's {champion.auc_early:.4f} "
            f"by more than {tol_auc:g}"
        )
    return all(checks.values()), reasons


def _share(share: float | None) -> str:
    return "part" if share is None else f"{share:.0%}"


def render_figures(challenger: Figures, champion: Figures | None) -> str:
    """The two versions' figures side by side."""
    rows = [
        ("", f"challenger v{challenger.version}", f"champion v{champion.version}" if champion else "champion")
    ]

    def fmt(f, attr, spec):
        return "-" if f is None else format(getattr(f, attr), spec)

    rows.append(("ROC-AUC (higher is better)", fmt(challenger, "auc", ".4f"), fmt(champion, "auc", ".4f")))
    rows.append(("Brier (lower is better)", fmt(challenger, "brier", ".4f"), fmt(champion, "brier", ".4f")))
    if not math.isnan(challenger.auc_early) or (champion is not None and not math.isnan(champion.auc_early)):
        rows.append(
            (
                f"ROC-AUC, first {_share(challenger.early_share)} of the period",
                fmt(challenger, "auc_early", ".4f"),
                fmt(champion, "auc_early", ".4f"),
            )
        )
    rows.append(("held-out rows", fmt(challenger, "n_rows", "d"), fmt(champion, "n_rows", "d")))
    rows.append(("of which missed", fmt(challenger, "n_misses", "d"), fmt(champion, "n_misses", "d")))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}" for r in rows)


def who(settings) -> str:
    if getattr(settings, "operator", None):
        return settings.operator
    user = os.environ.get("USER") or os.environ.get("USERNAME")
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return "unknown"


# -- MLflow parts ------------------------------------------------------------------------------
def heldout_frame(settings, mv) -> pd.DataFrame:
    """The held-out feature set logged with the run that produced version `mv`."""
    import mlflow.artifacts

    if not mv.run_id:
        raise UserError(
            f"version {mv.version} has no training run, so there is no held-out set to compare on"
        )
    with tempfile.TemporaryDirectory(dir=registry.scratch_dir(settings)) as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=mv.run_id,
                artifact_path=HELDOUT_ARTIFACT,
                dst_path=tmp,
                tracking_uri=settings.tracking_uri,
            )
        except Exception as exc:
            raise UserError(
                f"version {mv.version} has no held-out feature set ({HELDOUT_ARTIFACT}) in its run "
                f"{mv.run_id}: it was not trained by `repradar train`; use --force --reason to promote it anyway"
            ) from exc
        return pd.read_parquet(local)


def _evaluate(settings, version: str, frame: pd.DataFrame) -> tuple[Figures, str]:
    """`version`'s figures on the held-out rows `frame`, and the currency its texts write amounts in."""
    from models.loading import load_version
    from models.pyfunc import MissingFeaturesError

    model = load_version(settings, version)
    try:
        risk = model.pyfunc.predict_frame(frame)["risk"].to_numpy()
    except MissingFeaturesError as exc:
        raise UserError(
            f"version {version} cannot be scored on the challenger's held-out set ({exc}); the two were "
            "trained on different features. Compare them by hand, then use --force --reason to promote"
        ) from None
    elapsed = frame["elapsed_share"].to_numpy(dtype=float) if "elapsed_share" in frame else None
    figures = figures_for(version, frame[LABEL].to_numpy(), risk, elapsed, settings.gate_early_share)
    return figures, model.pyfunc.spec_.currency


def _history(mv) -> list[dict]:
    """Every gate attempt recorded on the version, oldest first."""
    tags = mv.tags or {}
    out = []
    for key in sorted(k for k in tags if k.startswith(HISTORY_TAG + ".")):
        try:
            out.append(json.loads(tags[key]))
        except ValueError:
            continue
    return out


def _record(client, name: str, mv, entry: dict) -> None:
    # One tag per attempt (promotion_history.001, ...): a single growing tag would hit MLflow's
    # limit on tag value length after a dozen attempts.
    n = len([k for k in (mv.tags or {}) if k.startswith(HISTORY_TAG + ".")]) + 1
    client.set_model_version_tag(
        name, mv.version, f"{HISTORY_TAG}.{n:03d}", json.dumps(entry, separators=(",", ":"))
    )


def promote(
    settings,
    version: str | None = None,
    force: bool = False,
    reason: str | None = None,
    actor: str = "cli",
    by: str | None = None,
    dry_run: bool = False,
) -> GateResult:
    """Run the gate for `version` (default: the challenger) and move the `champion` alias if it passes.

    `force=True` skips the verdict (not the evaluation) and needs a `reason`. Every attempt, refused
    or not, is appended to the version's `promotion_history` tag with who (`by`: the service's signed-in
    user; else the operator, `who`), when, why and the figures. `dry_run=True` compares the versions
    on the same held-out rows and says what the gate would decide, recording and moving nothing.
    """
    if force and dry_run:
        raise UserError("--dry-run checks what the gate would decide: it takes no --force")
    if force and not (reason and reason.strip()):
        raise UserError("--force needs --reason TEXT saying why the gate is overridden")
    if not registry.store_exists(settings):
        raise UserError("no model has been trained yet: run `repradar train --data DIR` first")
    client = registry.configure(settings)
    # Overlapping promotions (and trainings moving the challenger) take turns: each gates against the
    # champion it will replace, and the record names that one.
    with alias_lock(settings, "moving an alias"):
        for _ in range(3):
            result = _promote_once(settings, client, version, force, reason, actor, by, dry_run)
            if result is not None:
                return result
    raise Unavailable(
        "the champion kept changing while the gate ran (another promotion, e.g. from another host using "
        "the same registry); run the promotion again"
    )


def _promote_once(settings, client, version, force, reason, actor, by, dry_run=False) -> GateResult | None:
    """One gate attempt, with the alias lock held; None when the champion moved while it was measured
    (a promotion that does not take this home's lock: another host's), to be run again."""
    name = settings.model_name
    if version is None:
        mv = registry.version_by_alias(client, name, CHALLENGER)
        if mv is None:
            raise UserError(
                f"model {name!r} has no challenger: run `repradar train --data DIR` first, or name one with --version"
            )
    else:
        mv = registry.get_version(client, name, str(version))
        if mv is None:
            raise UserError(f"model {name!r} has no version {version}; `repradar models` lists the versions")
    champ = registry.version_by_alias(client, name, CHAMPION)
    champ_version = None if champ is None else str(champ.version)
    if champ_version == str(mv.version):
        return GateResult(
            promoted=False,
            decision="already",
            challenger_version=str(mv.version),
            champion_version=champ_version,
            message=f"version {mv.version} is already the champion; nothing to do",
        )

    _check_training_ended(client, mv)
    frame = heldout_frame(settings, mv)
    challenger_figs, currency = _evaluate(settings, str(mv.version), frame)
    figures = {"challenger": challenger_figs}
    champion_figs = champion_currency = None
    if champ is not None:
        champion_figs, champion_currency = _evaluate(settings, champ_version, frame)
        figures["champion"] = champion_figs
    passes, reasons = gate_decision(
        challenger_figs, champion_figs, settings.gate_tol_auc, settings.gate_tol_brier
    )

    if champ is None:
        decision = "first"
    elif passes:
        decision = "passed"
    elif force:
        decision = "forced"
    else:
        decision = "refused"
    promoted = decision != "refused"

    # milliseconds: a rollback can follow a promotion within the same second, and the history
    # is ordered by this stamp
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    entry = {
        "at": now,
        "by": by or who(settings),
        "via": actor,
        "decision": decision,
        "forced": bool(force and not passes),
        "reason": reason,
        "previous_champion": champ_version,
        "tolerances": {
            "auc": settings.gate_tol_auc,
            "brier": settings.gate_tol_brier,
            "early_share": settings.gate_early_share,
        },
        "figures": {k: asdict(v) for k, v in figures.items()},
        "currencies": {"challenger": currency, "champion": champion_currency},
    }
    champ_now = registry.version_by_alias(client, name, CHAMPION)
    if (None if champ_now is None else str(champ_now.version)) != champ_version:
        return None
    if dry_run:
        return _dry_run_result(mv, champ, decision, figures, reasons, currency, champion_currency)
    # A version is champion or challenger, not both: the promoted one leaves the challenger alias
    # (the next training sets it again).
    challenger_now = registry.version_by_alias(client, name, CHALLENGER)
    removed = (
        [CHALLENGER]
        if promoted and challenger_now is not None and str(challenger_now.version) == str(mv.version)
        else []
    )
    if promoted:
        entry["removed_aliases"] = removed
    _record(client, name, mv, entry)
    table = _figures_table(mv, champ, figures, currency, champion_currency)
    if not promoted:
        message = (
            f"promotion of version {mv.version} refused by the gate:\n{table}\n"
            + "\n".join(f"  - {r}" for r in reasons)
            + "\nTo override: repradar promote --version "
            + f"{mv.version} --force --reason TEXT"
        )
        return GateResult(False, decision, str(mv.version), champ_version, figures, reasons, message)

    client.set_registered_model_alias(name, CHAMPION, mv.version)
    for alias in removed:
        client.delete_registered_model_alias(name, alias)
    tags = {
        "promoted_at": now,
        "promoted_by": entry["by"],
        "promoted_via": actor,
        "promotion_decision": decision,
        "promotion_reason": reason or "",
        "promotion_forced": str(entry["forced"]).lower(),
        "promotion_figures": json.dumps(entry["figures"], separators=(",", ":")),
        "previous_champion": champ_version or "",
    }
    for k, v in tags.items():
        client.set_model_version_tag(name, mv.version, k, v)
    if champ is not None:
        client.set_model_version_tag(name, champ.version, "replaced_at", now)
        client.set_model_version_tag(name, champ.version, "replaced_by", str(mv.version))
    verb = {"first": "first champion", "passed": "passed the gate", "forced": "forced past the gate"}[
        decision
    ]
    message = f"version {mv.version} is now champion ({verb}):\n{table}\n" + "\n".join(
        f"  - {r}" for r in reasons
    )
    if removed:
        message += f"\n  the alias challenger is removed from version {mv.version}: it is the champion now"
    if decision == "forced":
        message += f"\n  reason recorded: {reason}"
    return GateResult(True, decision, str(mv.version), champ_version, figures, reasons, message)


def _figures_table(mv, champ, figures, currency, champion_currency) -> str:
    """Both versions' figures on the same held-out rows, with what else differs between them."""
    table = render_figures(figures["challenger"], figures.get("champion"))
    if note := _other_data_note(mv, champ):
        table += "\n" + note
    if note := _other_definitions_note(mv, champ):
        table += "\n" + note
    if champion_currency is not None and champion_currency != currency:
        # Amounts are labelled, never converted: a new currency means the data changed, and every
        # text the service writes will change with it.
        table += (
            f"\n  note: v{mv.version} writes amounts in {currency} and champion v{champ.version} in "
            f"{champion_currency}; promoting it changes the currency of every text (amounts are not converted)"
        )
    return table


def _dry_run_result(mv, champ, decision, figures, reasons, currency, champion_currency) -> GateResult:
    """What the gate would decide, said as such: nothing recorded, no alias moved."""
    table = _figures_table(mv, champ, figures, currency, champion_currency)
    verdict = {
        "first": "would become the first champion",
        "passed": "would pass the gate",
        "refused": "would be refused by the gate",
    }[decision]
    message = (
        f"version {mv.version} {verdict} (dry run: nothing recorded, no alias moved):\n{table}\n"
        + "\n".join(f"  - {r}" for r in reasons)
    )
    if decision != "refused":
        message += f"\nTo promote it: repradar promote --version {mv.version}"
    champ_version = None if champ is None else str(champ.version)
    return GateResult(
        False, decision, str(mv.version), champ_version, figures, reasons, message, dry_run=True
    )


def _check_training_ended(client, mv) -> None:
    """UserError for a version whose training run is still RUNNING: `train` registers the version before it
    tags it and sets the challenger alias, and deletes it if it then fails or is stopped; promoted in that
    moment, it became champion and challenger at once, or a champion deleted from under the service."""
    from mlflow.exceptions import MlflowException

    if not mv.run_id:
        return
    try:
        status = client.get_run(mv.run_id).info.status
    except MlflowException:
        return  # a run deleted since (`mlflow gc`): nothing is training it
    if status == "RUNNING":
        raise UserError(
            f"version {mv.version} is not complete yet: its training (MLflow run {mv.run_id}) is still "
            "running; promote it once `repradar train` has ended (if that training was killed, "
            "`repradar models` ends its run)"
        )


def _other_data_note(mv, champ) -> str | None:
    """A line saying the two versions were trained on different data (their `data_sha256` tags), so the
    gate's like-for-like figures are not what their own runs reported."""
    ours = mv.tags.get("data_sha256") if mv.tags else None
    theirs = champ.tags.get("data_sha256") if champ is not None and champ.tags else None
    if not ours or not theirs or ours == theirs:
        return None
    return (
        f"  note: v{mv.version} and champion v{champ.version} were trained on different data (data_sha256 "
        f"{ours[:12]} against {theirs[:12]}); both are measured above on v{mv.version}'s held-out rows, "
        "so these figures, not their runs' own, compare them"
    )


def definitions_status(trained: str | None, current: str) -> str | None:
    """'current' when a version was trained on the feature definitions this code computes, 'older' when
    on others (an earlier release's), None when it was trained before they were recorded (unknown)."""
    if not trained:
        return None
    return "current" if trained == current else "older"


def _other_definitions_note(mv, champ) -> str | None:
    """A line saying the two versions were trained on different feature definitions (`features_sha256`
    tags), or that one's are unknown: the held-out rows both are scored on were built by the code that
    trained the challenger, so the champion is judged on inputs computed unlike its training rows."""
    if champ is None:
        return None
    ours = (mv.tags or {}).get("features_sha256")
    theirs = (champ.tags or {}).get("features_sha256")
    if ours == theirs:
        return None
    if ours and theirs:
        what, judged = f"different feature definitions (features {ours[:8]} against {theirs[:8]})", "is"
    else:
        unknown = champ.version if not theirs else mv.version
        what = (
            f"feature definitions that may differ (v{unknown} was trained before they were recorded: unknown)"
        )
        judged = "may be"
    return (
        f"  note: v{mv.version} and champion v{champ.version} were trained on {what}; both are scored on "
        f"v{mv.version}'s held-out rows, built by the code that trained v{mv.version}, so champion "
        f"v{champ.version} {judged} judged on inputs computed unlike those it learnt on"
    )


def describe_versions(settings) -> list[dict]:
    """Every registered version with its aliases, held-out metrics and promotion history, newest first."""
    if not registry.store_exists(settings):
        return []
    client = registry.configure(settings)
    name = settings.model_name
    aliases = registry.aliases_by_version(client, name)
    from features.registry import definitions_fingerprint

    current = definitions_fingerprint()
    out = []
    for mv in registry.list_versions(client, name):
        tags = mv.tags or {}
        out.append(
            {
                "version": str(mv.version),
                "created": dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).isoformat(
                    timespec="seconds"
                ),
                "aliases": aliases.get(str(mv.version), []),
                "run_id": mv.run_id,
                "test_auc": _num(tags.get("test_auc")),
                "test_brier": _num(tags.get("test_brier")),
                "test_auc_week3": _num(tags.get("test_auc_week3")),
                "data_window": tags.get("data_window", ""),
                "test_window": tags.get("test_window", ""),
                "data_sha256": tags.get("data_sha256"),
                "seed": tags.get("seed"),
                # None for a version trained before the tag: its overrides are only in lgbm.* params
                "param_overrides": json.loads(tags["param_overrides"]) if "param_overrides" in tags else None,
                "git_commit": tags.get("git_commit"),
                "features_sha256": tags.get("features_sha256"),
                # current / older: trained on this code's feature definitions or not; None: before they were recorded
                "features": definitions_status(tags.get("features_sha256"), current),
                # None: not known (a version trained before its currency was recorded)
                "currency": version_currency(
                    tags, _history(mv), lambda mv=mv: bundled_currency(settings, mv)
                ),
                "history": _history(mv),
                "replaced_at": tags.get("replaced_at"),
                "replaced_by": tags.get("replaced_by"),
            }
        )
    # Every time a version stopped being champion, from the promotions that replaced it (each
    # successful entry names its previous champion): the `replaced_*` tags keep only the last time.
    for v in out:
        v["replaced"] = sorted(
            (
                {"at": h.get("at"), "by_version": w["version"]}
                for w in out
                for h in w["history"]
                if h.get("decision") in ("first", "passed", "forced")
                and str(h.get("previous_champion") or "") == v["version"]
            ),
            key=lambda r: r["at"] or "",
        )
    return out


def version_currency(tags: dict, history: list[dict], bundled=lambda: None) -> str | None:
    """The ISO code a version's amounts are in: its `currency` tag (set by training, the spec's). For a
    version registered before the tag: a currency other than USD that a gate attempt read from its spec,
    else the one its bundled feature spec records (`bundled()`, read only then). None (unknown) when the
    spec has no currency: such a model was trained before it was recorded, with data in any currency
    (its spec loads as USD, so its texts write "$", but its amounts need not be dollars)."""
    if tags.get("currency"):
        return tags["currency"]
    for h in reversed(history):
        code = (h.get("currencies") or {}).get("challenger")
        # a USD here may be only the default a spec without the field loads with
        if isinstance(code, str) and code and code != DEFAULT_CURRENCY:
            return code
    return bundled()


# (source, name, version) -> the bundled spec's currency (None: the spec has none); a version's files
# never change, and the service lists the versions on every models page.
_BUNDLED_CURRENCY: dict[tuple[str, str, str], str | None] = {}


def bundled_currency(settings, mv) -> str | None:
    """The `currency` the version's bundled feature spec records; None when it records none or its files
    cannot be read now (only an answer read from the files is remembered)."""
    key = (str(mv.source), str(mv.name), str(mv.version))
    if key in _BUNDLED_CURRENCY:
        return _BUNDLED_CURRENCY[key]
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from models.pyfunc import ARTIFACT_FILES

    uri = f"models:/{mv.name}/{mv.version}/artifacts/{ARTIFACT_FILES['spec']}"
    try:
        with tempfile.TemporaryDirectory(dir=registry.scratch_dir(settings)) as tmp:
            path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
            with open(path, encoding="utf-8") as f:
                spec = json.load(f)
    except (MlflowException, OSError, ValueError):
        return None
    code = spec.get("currency") if isinstance(spec, dict) else None
    _BUNDLED_CURRENCY[key] = code if isinstance(code, str) and code else None
    return _BUNDLED_CURRENCY[key]


def _num(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
