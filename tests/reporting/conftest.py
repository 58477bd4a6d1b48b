"""Simulated organisations and one trained, promoted model for the reporting tests (built once).

- `home`: a small organisation (300 reps, 4 quarters of 2023) trained and promoted through the
  command line: its run logs the drift reference, the held-out set and the model card.
- `fair_org` / `biased_org`: a larger organisation (1200 reps, same quarters, same seed) without and
  with `bias_quota_against="F"`, scored with that model in the last quarter. Fairness needs the
  size: with about 450 reps per gender and a fifth of them in the high band, an impact ratio of
  0.8 is about two standard errors from 1.
- `observed_org`: the fair organisation's size and seed with `manager_view="observed"`: managers
  decide whom to help from what the CRM shows, the setting in which an observational estimate can
  be right (docs/report.md).
- `fair_effects` / `observed_effects`: the intervention effects over every finished quarter of those
  organisations (all four: what a report as of the day after their data would show), to hold the
  estimator to the simulator's truth. A report as of AS_OF counts only the quarters that ended before
  it (`fair_report`).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from repradar.settings import Settings
from tests.conftest import run_cli  # noqa: F401  (the package's tests import it from here)

TRAIN = dict(n_reps=300, n_periods=4, seed=41)
ORG = dict(n_reps=1200, n_periods=4, seed=42)
AS_OF = dt.date(2023, 11, 13)  # week 7 of 2023-Q4, the quarter held out from training
TRAIN_AS_OF = dt.date(2023, 5, 13)  # a training snapshot day (week 7 of 2023-Q2), inside the training window


def small_scores(
    bands: dict[str, str], managers: dict[str, str], as_of="2024-05-13", version="3"
) -> pd.DataFrame:
    """A tiny scores frame (rep -> band, rep -> manager) for the tests that need no model."""
    reps = sorted(bands)
    risk = {"high": 0.8, "medium": 0.4, "low": 0.1}
    return pd.DataFrame(
        {
            "rep_id": reps,
            "manager_id": [managers[r] for r in reps],
            "period_start": pd.Timestamp("2024-04-01"),
            "period_end": pd.Timestamp("2024-06-30"),
            "as_of": pd.Timestamp(as_of),
            "risk": [risk[bands[r]] + 0.01 * i for i, r in enumerate(reps)],
            "risk_band": [bands[r] for r in reps],
            "rank": range(1, len(reps) + 1),
            "attainment_to_date": 0.2,
            "drivers": [
                [{"feature": "pipeline_coverage", "group": "pipeline", "value": 0.4, "contribution": 0.9}]
            ]
            * len(reps),
            "interventions": [["pipeline_generation"]] * len(reps),
            "model_version": version,
        }
    )


def _simulate(tmp_path_factory, name, **kw) -> Path:
    from simulator.simulate import SimConfig, simulate

    out = tmp_path_factory.mktemp(name) / "data"
    simulate(SimConfig(oracle_sims=0, **kw), out)
    return out


@pytest.fixture(scope="session")
def train_org(tmp_path_factory) -> Path:
    return _simulate(tmp_path_factory, "rep_train", **TRAIN)


@pytest.fixture(scope="session")
def home(tmp_path_factory, train_org) -> Path:
    home = tmp_path_factory.mktemp("rep_home")
    r = run_cli(home, "train", "--data", str(train_org))
    assert r.exit_code == 0, r.stdout + r.stderr
    r = run_cli(home, "promote")
    assert r.exit_code == 0, r.stdout + r.stderr
    return home


@pytest.fixture(scope="session")
def settings(home) -> Settings:
    return Settings(home=home)


@pytest.fixture(scope="session")
def model(settings):
    from models.loading import load_version

    return load_version(settings, "1")


@pytest.fixture(scope="session")
def model_info(settings, model):
    from reporting.modelinfo import load_model_info

    return load_model_info(settings, "1", model=model)


@pytest.fixture(scope="session")
def train_tables(train_org):
    from features.io import load_folder

    return load_folder(train_org, validate=False)


@pytest.fixture(scope="session")
def fair_org(tmp_path_factory) -> Path:
    return _simulate(tmp_path_factory, "rep_fair", **ORG)


@pytest.fixture(scope="session")
def biased_org(tmp_path_factory) -> Path:
    return _simulate(tmp_path_factory, "rep_biased", bias_quota_against="F", **ORG)


@pytest.fixture(scope="session")
def observed_org(tmp_path_factory) -> Path:
    return _simulate(tmp_path_factory, "rep_observed", manager_view="observed", **ORG)


def _all_effects(tables, model, settings):
    from reporting.report import intervention_effects
    from reporting.settings import ReportSettings

    effects, why = intervention_effects(tables, model, settings, ReportSettings())
    assert effects is not None, why
    return effects


@pytest.fixture(scope="session")
def observed_effects(observed_org, model, settings):
    from features.io import load_folder

    return _all_effects(load_folder(observed_org, validate=False), model, settings)


@pytest.fixture(scope="session")
def fair_effects(fair_tables, model, settings):
    return _all_effects(fair_tables, model, settings)


@pytest.fixture(scope="session")
def fair_tables(fair_org):
    from features.io import load_folder

    return load_folder(fair_org, validate=False)


@pytest.fixture(scope="session")
def fair_scores(fair_tables, model, settings):
    from models.scoring import score_tables

    return score_tables(fair_tables, AS_OF, model, settings)


@pytest.fixture(scope="session")
def fair_report(tmp_path_factory, fair_scores, fair_tables, settings, model_info):
    """The whole report on the fair organisation: HTML, PDF and JSON."""
    from reporting.report import make_report

    out = tmp_path_factory.mktemp("rep_report") / "report.html"
    return make_report(fair_scores, fair_tables, settings, out=out, model_info=model_info)


def english_runs(text: str, keep: tuple[str, ...] = ()) -> list[str]:
    """Runs of three or more English words in `text` (after removing `keep`: names, ids, units from the
    data): what a Chinese report or digest must not hold, since it would be a sentence left untranslated."""
    for k in sorted(keep, key=len, reverse=True):
        text = text.replace(k, " ")
    return re.findall(r"[A-Za-z][A-Za-z'-]*(?:[ ,;:]+[A-Za-z][A-Za-z'-]*){2,}", text)
