"""Fixtures of the dashboard tests: the service tests' small org on SQLite, signed in through the login form."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.serving.conftest import StubSource, make_settings, seed


class Web:
    def __init__(self, app, client: TestClient, tokens: dict[str, str]):
        self.app, self.client, self.tokens = app, client, tokens

    def login(self, user: str) -> TestClient:
        """A fresh client signed in as `user` through the form (the session cookie)."""
        c = TestClient(self.app, base_url="http://testserver")
        r = c.post("/login", data={"token": self.tokens[user], "next": "/"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        return c


@pytest.fixture
def web(tmp_path):
    app = create_app(
        make_settings(tmp_path, f"sqlite:///{tmp_path / 'web.db'}"), model_source=StubSource("1")
    )
    with TestClient(app) as client:
        yield Web(app, client, seed(app))


@pytest.fixture(scope="session")
def worse_registry(trained, tmp_path_factory):
    """The trained registry (version 1 champion, version 2 registered from its run) plus a genuinely
    worse challenger, trained and registered through the normal path (`train_feature_set`) on the same
    organisation, but with the outcomes of its training and validation periods shuffled among the reps
    of each period (features untouched, miss rate per period unchanged). Its held-out period keeps the
    true outcomes, so the gate judges it and the champion on the same, real rows.

    Returns (home, data, as_of, version of the worse challenger). Built once: one more small training.
    """
    import shutil

    import numpy as np
    import pandas as pd

    from features.build import build_training_set
    from features.io import load_folder
    from repradar.settings import Settings
    from training.pipeline import train_feature_set
    from training.split import time_split

    data, home0, as_of = trained
    home = tmp_path_factory.mktemp("worse") / "home"
    shutil.copytree(home0, home)
    # Its own experiment, so the run's artifacts go under this copy (the copied experiment's artifact
    # root is the original home's, which other tests share).
    settings = Settings(home=home, experiment_name="repradar-shuffled-labels")
    fs = build_training_set(
        load_folder(data), every_days=settings.snapshot_every_days, miss_threshold=settings.miss_threshold
    )
    frame = fs.frame.reset_index(drop=True)
    split = time_split(frame, n_test=settings.test_periods, n_valid=1)
    keys = ["rep_id", "period_start"]
    past = frame.loc[~split.test, [*keys, "attainment", "missed"]].drop_duplicates(keys)
    rng = np.random.default_rng(7)
    # Within each period, rep A gets the outcome (attainment and missed) of a random rep B.
    draw = past[keys].assign(
        source=past.groupby("period_start")["rep_id"].transform(lambda s: rng.permutation(s.to_numpy()))
    )
    outcome = draw.merge(past.rename(columns={"rep_id": "source"}), on=["source", "period_start"])
    new = frame[keys].merge(outcome, on=keys, how="left")
    moved = pd.Series(~split.test, index=frame.index)
    for col in ("attainment", "missed"):
        frame[col] = frame[col].mask(moved, new[col])
    assert frame.loc[split.test, "missed"].equals(fs.frame.reset_index(drop=True).loc[split.test, "missed"])
    assert (frame.loc[moved, "missed"] != fs.frame.reset_index(drop=True).loc[moved, "missed"]).any()
    fs.frame = frame
    result = train_feature_set(fs, settings, source=data, seed=1)
    return home, data, as_of, result.version
