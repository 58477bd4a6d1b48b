"""Tune the numbers in the playbook's rule strengths against known causes of misses.

The shipped weights came from this search on a simulated organisation's training periods
(docs/playbook.md): among reps who missed with a known dominant cause, maximise the share whose
top-two interventions answer that cause (training/cause_match.py). Greedy coordinate search: each
number in a `strength:` expression is tried at a few multiples of its value (0 drops the term; signs
never flip, so a term keeps its meaning), a change is kept when the share rises, and rounds repeat
until none does. The model's scores, contributions and the rules' variables are computed once; each
trial only re-ranks. The file's text, comments included, is kept: only numbers change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.playbook import (
    Playbook,
    PlaybookInputs,
    choose,
    parse_playbook,
    playbook_inputs,
    rank_interventions,
)
from training.cause_match import TOP, WEEKS, answers, match_rows

FACTORS = (0.0, 0.5, 0.8, 1.25, 2.0)
# the weights of a strength expression: a number that multiplies a term ("1.75 * rel(x)") or the
# leading constant ("5.3 - ..."); offsets and bounds inside a term ("x - 1", "min(x, 2)") keep their
# meaning and are never tuned, nor are digits inside names (new_deals_per_100_activities_91d)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?=\s*\*)|^\s*\d+(?:\.\d+)?(?=\s*(?:[-+]|$))")
_STRENGTH = re.compile(r"^(\s*strength:\s*)(['\"]?)(.*?)\2\s*$")


@dataclass
class TuningSet:
    """The rules' inputs on the rows with a known cause, and those causes."""

    inputs: PlaybookInputs
    causes: np.ndarray
    weeks: np.ndarray

    def __len__(self) -> int:
        return len(self.causes)


def tuning_set(
    frame: pd.DataFrame, model, truth: pd.DataFrame, *, playbook: Playbook, band_high: float, weeks=WEEKS
) -> TuningSet:
    """Score `frame`'s snapshots of `weeks` with `model` (a RepRadarModel) once, and keep the rows of
    reps who missed with a dominant cause in `truth` (cause_match.load_truth). Peers and team medians
    are those of every scored row of the day, as when scoring."""
    sub = frame[frame["week_of_period"].isin(list(weeks))].reset_index(drop=True)
    spec = model.spec_
    inputs = playbook_inputs(
        sub,
        model.predict_frame(sub)["risk"].to_numpy(),
        model.contributions(sub).drop(columns="base_value"),
        spec=spec,
        playbook=playbook,
        band_high=band_high,
        k=spec.max_drivers,
    )
    rows = match_rows(sub, [[] for _ in range(len(sub))], truth, weeks)
    pos = rows["row"].to_numpy()
    return TuningSet(
        inputs=inputs.take(pos, playbook),
        causes=rows["cause"].to_numpy(dtype=object),
        weeks=rows["week"].to_numpy(),
    )


def _no_reason(*_args, **_kw) -> str:
    return ""


def top_ids(playbook: Playbook, inputs: PlaybookInputs) -> list[list[str]]:
    """Each row's suggested ids, best first, as recommend_frame orders them (without the reasons)."""
    n = len(inputs.quota_share)
    ranked = rank_interventions(playbook, inputs.env, n)
    return [
        choose(
            playbook,
            ranked[i],
            quota_share=float(inputs.quota_share[i]),
            insufficient=bool(inputs.insufficient[i]),
            reason_of=_no_reason,
        )[0]
        for i in range(n)
    ]


def hits(playbook: Playbook, ts: TuningSet) -> np.ndarray:
    """Per row: does one of the top-two ids answer the row's cause?"""
    return np.array(
        [
            bool(set(ids[:TOP]) & set(answers(c)))
            for ids, c in zip(top_ids(playbook, ts.inputs), ts.causes, strict=True)
        ],
        dtype=bool,
    )


def numbers(text: str) -> list[tuple[int, int, float]]:
    """(start, end, value) of every weight in the file's `strength:` expressions, in file order."""
    out, offset = [], 0
    for line in text.splitlines(keepends=True):
        m = _STRENGTH.match(line.rstrip("\n"))
        if m:
            start = offset + m.start(3)
            for n in _NUMBER.finditer(m.group(3)):
                a = n.start() + len(n.group()) - len(n.group().lstrip())
                out.append((start + a, start + n.end(), float(n.group())))
        offset += len(line)
    return out


def _format(v: float) -> str:
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return s or "0"


def with_number(text: str, j: int, value: float) -> str:
    """`text` with the j-th strength number replaced by `value`."""
    a, b, _ = numbers(text)[j]
    return text[:a] + _format(value) + text[b:]


@dataclass
class TuneResult:
    """The tuned file's text, the hit share before and after, and each kept change."""

    text: str
    share_before: float
    share_after: float
    changes: list[dict] = field(default_factory=list)  # {rule line, old, new, share}
    rounds: int = 0


def tune(
    text: str,
    ts: TuningSet,
    *,
    factors=FACTORS,
    rounds: int = 3,
    source: str = "<playbook>",
    progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Coordinate search over the strength numbers of playbook `text`, maximising the hit share on `ts`."""
    if len(ts) == 0:
        raise ValueError("no rows with a known cause to tune on")
    best = float(hits(parse_playbook(text, source), ts).mean())
    result = TuneResult(text=text, share_before=best, share_after=best)
    count = len(numbers(text))
    for r in range(1, rounds + 1):
        improved = False
        for j in range(count):
            value = numbers(text)[j][2]
            if value == 0:
                continue
            trials = []
            for f in factors:
                cand = with_number(text, j, value * f)
                if cand == text:
                    continue
                trials.append((float(hits(parse_playbook(cand, source), ts).mean()), f, cand))
            if not trials:
                continue
            share, f, cand = max(trials, key=lambda t: t[0])
            if share > best + 1e-12:
                line = text.count("\n", 0, numbers(text)[j][0]) + 1
                result.changes.append(
                    {"line": line, "old": value, "new": float(_format(value * f)), "share": share}
                )
                best, text, improved = share, cand, True
        result.rounds = r
        if progress:
            progress(f"round {r}: share {best:.3f} ({len(result.changes)} change(s) so far)")
        if not improved:
            break
    result.text, result.share_after = text, best
    return result


def pooled(sets: list[TuningSet], playbook: Playbook) -> TuningSet:
    """Several organisations' tuning rows as one set, so that weights are chosen on all of them at
    once rather than fitted to one."""
    if len(sets) == 1:
        return sets[0]
    return TuningSet(
        inputs=PlaybookInputs.concat([ts.inputs for ts in sets], playbook),
        causes=np.concatenate([ts.causes for ts in sets]),
        weeks=np.concatenate([ts.weeks for ts in sets]),
    )


@dataclass
class Organisation:
    """One organisation to tune on: its snapshots, the model that scores them, its known causes."""

    name: str
    frame: pd.DataFrame
    model: object
    truth: pd.DataFrame


@dataclass
class HeldOut:
    """An organisation's held-out window: shares before and after, for information only."""

    name: str
    n: int
    before: dict[int, float]  # week -> share
    after: dict[int, float]


@dataclass
class TuningReport:
    """A tuning run on one or more organisations: the search's result and the held-out windows' shares."""

    result: TuneResult
    n_tuning: int
    tuning_windows: list[str]  # "name: first..last day" per organisation
    heldout: list[HeldOut] = field(default_factory=list)  # never used to choose

    def lines(self) -> list[str]:
        r = self.result
        out = [
            f"tuned on {self.n_tuning} snapshots of reps who missed with a known cause ({'; '.join(self.tuning_windows)}; "
            f"weeks {', '.join(map(str, WEEKS))}): top-two cause match {r.share_before:.3f} -> {r.share_after:.3f} "
            f"in {r.rounds} round(s)",
        ]
        for c in r.changes:
            out.append(
                f"  line {c['line']}: {_format(c['old'])} -> {_format(c['new'])} (share {c['share']:.3f})"
            )
        if not r.changes:
            out.append(
                "  no change raised the share: the playbook is already at a local optimum on these rows"
            )

        def fmt(d):
            return " / ".join(f"{d[w]:.2f}" for w in sorted(d))

        for h in self.heldout:
            if h.n:
                out.append(
                    f"held-out period of {h.name}, for information (never used to choose; {h.n} snapshots, weeks "
                    f"{' / '.join(map(str, sorted(h.before)))}): {fmt(h.before)} -> {fmt(h.after)}"
                )
        for h in self.worse_heldout():
            out.append(
                f"warning: the match fell on the held-out period of {h.name} ({_mean(h.before):.3f} -> "
                f"{_mean(h.after):.3f}, mean of the weeks): the new weights may fit the tuning rows' noise "
                "(a small organisation, few periods); keep the old file unless the rows it gained are the ones you trust"
            )
        return out

    def worse_heldout(self) -> list[HeldOut]:
        """The held-out windows whose mean weekly match the tuned file lowers: a sign of overfitting."""
        return [h for h in self.heldout if h.n and _mean(h.after) < _mean(h.before) - 1e-9]


def _mean(d: dict[int, float]) -> float:
    return float(np.mean(list(d.values()))) if d else float("nan")


def _by_week(h: np.ndarray, weeks: np.ndarray) -> dict[int, float]:
    return {int(w): float(h[weeks == w].mean()) for w in np.unique(weeks)}


def _split(org: Organisation) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The organisation's snapshots before its model's held-out window, those in it, and the first's span."""
    test_window = str(org.model.spec_.meta.get("test_window", ""))
    frame = org.frame
    if not test_window:
        return frame, frame.iloc[0:0], f"{org.name}: all periods"
    start = pd.Timestamp(test_window.split("..")[0])
    ps = pd.to_datetime(frame["period_start"])
    before = frame[ps < start]
    span = (
        f"{ps[ps < start].min():%Y-%m-%d}..{start - pd.Timedelta(days=1):%Y-%m-%d}" if len(before) else "none"
    )
    return before, frame[ps >= start], f"{org.name}: {span}"


def tune_on_data(
    orgs: list[Organisation],
    *,
    text: str,
    band_high: float,
    rounds: int = 3,
    source: str = "<playbook>",
    progress: Callable[[str], None] | None = None,
) -> TuningReport:
    """Tune on each organisation's training periods (before its model's held-out window), pooled;
    report each held-out window apart."""
    from repradar.errors import UserError

    playbook = parse_playbook(text, source)
    parts = [(org, *_split(org)) for org in orgs]
    sets = [
        tuning_set(before, org.model, org.truth, playbook=playbook, band_high=band_high)
        for org, before, _, _ in parts
        if len(before)
    ]
    sets = [ts for ts in sets if len(ts)]
    ts = pooled(sets, playbook) if sets else None
    if ts is None:
        raise UserError(
            "no snapshot at weeks 3, 6 or 9 of a rep who missed with a known cause before the models' held-out "
            f"windows ({'; '.join(w for *_, w in parts)}): nothing to tune on"
        )
    if progress:
        progress(
            f"{len(ts)} snapshots to tune on; {len(numbers(text))} weights, {len(FACTORS)} trials each per round"
        )
    result = tune(text, ts, rounds=rounds, source=source, progress=progress)
    tuned = parse_playbook(result.text, source)
    heldout = []
    for org, _, held_frame, _ in parts:
        if len(held_frame) == 0:
            continue
        held = tuning_set(held_frame, org.model, org.truth, playbook=playbook, band_high=band_high)
        if len(held):
            heldout.append(
                HeldOut(
                    name=org.name,
                    n=len(held),
                    before=_by_week(hits(playbook, held), held.weeks),
                    after=_by_week(hits(tuned, held), held.weeks),
                )
            )
    return TuningReport(
        result=result,
        n_tuning=len(ts),
        tuning_windows=[w for *_, w in parts],
        heldout=heldout,
    )
