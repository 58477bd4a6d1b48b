"""`GET /api/v1/models/{version}/curves`: what a version's training run logged (the lead-time step
metrics and the calibration bins), read back from a small MLflow store built by hand (no training); and
the state of each version's run in `GET /api/v1/models`.

The route reads MLflow only, so SQLite is enough for the service's own database here."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient

from models.registry import scratch_dir
from serving.app import create_app

from .conftest import StubSource, make_settings, seed

WEEKS = range(1, 7)


@pytest.fixture(scope="module")
def registry_app(tmp_path_factory):
    """Version 1: a run with `lead_*` step metrics and the calibration bins; version 2: a run that
    logged neither; version 3: registered from a folder, without a run; version 4: from a run left RUNNING
    by a killed training; version 5: from a run training now."""
    from models import registry
    from training.evaluate import calibration_bins

    tmp = tmp_path_factory.mktemp("curves")
    settings = make_settings(tmp, f"sqlite:///{tmp / 'service.db'}")
    client = registry.configure(settings)
    exp = registry.ensure_experiment(client, settings)

    run = client.create_run(exp).info.run_id
    for w in WEEKS:
        client.log_metric(run, "lead_model_auc", 0.6 + 0.03 * w, step=w)
        client.log_metric(run, "lead_model_brier", 0.2 - 0.01 * w, step=w)
        client.log_metric(run, "lead_pacing_auc", 0.55 + 0.02 * w, step=w)
    client.log_metric(run, "lead_pacing_auc", float("nan"), step=7)  # undefined that week: not a point
    client.log_metric(run, "lead_model_ece", 0.05, step=1)  # not a measure the curve shows
    client.log_metric(run, "test_auc", 0.8)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 40)
    gaps = np.arange(40) % 5 == 0  # 8 rows the baseline could not score
    preds = {"model": rng.uniform(0, 1, 40), "pacing": np.where(gaps, np.nan, rng.uniform(0, 1, 40))}
    client.log_text(run, json.dumps(calibration_bins(y, preds)), "evaluation/calibration_bins.json")
    client.set_terminated(run)

    bare = client.create_run(exp).info.run_id
    client.log_metric(bare, "test_auc", 0.7)
    client.set_terminated(bare)

    # a training SIGKILLed after registering (left RUNNING), and one training now (this live process)
    from tests.conftest import killed_training_run

    killed, _ = killed_training_run(client, exp)
    training = client.create_run(exp, tags=registry.run_owner_tags()).info.run_id

    client.create_registered_model(settings.model_name)
    folder = settings.home / "model-folder"
    folder.mkdir(parents=True)
    kinds = (("full", run), ("bare", bare), ("loose", None), ("killed", killed), ("training", training))
    versions = {  # as text, as the API names them
        kind: str(client.create_model_version(settings.model_name, folder.as_uri(), run_id=run_id).version)
        for kind, run_id in kinds
    }
    app = create_app(settings, model_source=StubSource("1"))
    with TestClient(app) as http:
        yield http, seed(app, with_scores=False), client, run, versions, settings


def _h(tokens, user):
    return {"Authorization": f"Bearer {tokens[user]}"}


def test_curves_are_what_mlflow_holds(registry_app):
    http, tokens, client, run, versions, settings = registry_app
    r = http.get(f"/api/v1/models/{versions['full']}/curves", headers=_h(tokens, "ds"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == versions["full"] and body["run_id"] == run and body["recorded"] is True

    # the lead-time curves: every lead_{model}_{auc|brier} step metric, its finite points by week
    expected = {}
    for key in client.get_run(run).data.metrics:
        model, _, measure = key.removeprefix("lead_").rpartition("_")
        if key.startswith("lead_") and measure in ("auc", "brier"):
            history = client.get_metric_history(run, key)
            expected[key] = sorted((m.step, m.value) for m in history if math.isfinite(m.value))
    got = {c["metric"]: [(p["week"], p["value"]) for p in c["points"]] for c in body["lead"]}
    assert got == expected
    assert set(got) == {"lead_model_auc", "lead_model_brier", "lead_pacing_auc"}
    assert [w for w, _ in got["lead_pacing_auc"]] == list(WEEKS)  # the NaN of week 7 is left out
    assert [(c["measure"], c["model"]) for c in body["lead"]] == [
        ("auc", "model"),
        ("auc", "pacing"),
        ("brier", "model"),
    ]

    # the calibration bins: the logged artifact, as logged
    local = client.download_artifacts(run, "evaluation/calibration_bins.json", scratch_dir(settings))
    with open(local, encoding="utf-8") as f:
        logged = json.load(f)["models"]
    got = {
        c["model"]: [(b["mean_risk"], b["observed"], b["n"]) for b in c["bins"]] for c in body["calibration"]
    }
    assert got == {m: [(b["mean_risk"], b["observed"], b["n"]) for b in bins] for m, bins in logged.items()}
    assert sum(n for _, _, n in got["model"]) == 40 and sum(n for _, _, n in got["pacing"]) == 32

    for user in ("hr", "admin", "dshr"):  # the same roles as GET /api/v1/models
        assert http.get(f"/api/v1/models/{versions['full']}/curves", headers=_h(tokens, user)).json() == body
    r = http.get(f"/api/v1/models/{versions['full']}/curves", headers=_h(tokens, "mgr1"))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert http.get(f"/api/v1/models/{versions['full']}/curves").status_code == 401


def test_a_version_without_records_answers_empty_lists(registry_app):
    http, tokens, _, _, versions, _ = registry_app
    for kind in ("bare", "loose"):
        r = http.get(f"/api/v1/models/{versions[kind]}/curves", headers=_h(tokens, "ds"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["recorded"] is False and body["lead"] == [] and body["calibration"] == [], kind
        assert body["version"] == versions[kind]
    assert (
        http.get(f"/api/v1/models/{versions['loose']}/curves", headers=_h(tokens, "ds")).json()["run_id"]
        is None
    )


def test_the_list_shows_a_run_left_running_by_a_killed_training_as_failed_without_ending_it(registry_app):
    """`repradar models` ends a run a SIGKILLed training left RUNNING; `GET /api/v1/models` ran no such
    check and said nothing of the runs. Each version now names its run's state: a dead run as FAILED with a
    note (read only: MLflow keeps it RUNNING until the command ends it), a live one as RUNNING."""
    http, tokens, client, _, versions, _ = registry_app
    r = http.get("/api/v1/models", headers=_h(tokens, "ds"))
    assert r.status_code == 200, r.text
    got = {v["version"]: (v["run_status"], v["run_note"]) for v in r.json()["versions"]}
    assert got[versions["full"]] == got[versions["bare"]] == ("FINISHED", None)
    assert got[versions["loose"]] == (None, None) and got[versions["training"]] == ("RUNNING", None)
    status, note = got[versions["killed"]]
    assert status == "FAILED" and "MLflow still holds the run as RUNNING, but its training process" in note
    killed = client.get_model_version("repradar-risk", versions["killed"]).run_id
    assert client.get_run(killed).info.status == "RUNNING"  # a GET writes nothing to MLflow


def test_the_models_page_shows_each_versions_run_state_in_both_languages(registry_app):
    """The dashboard's models page did not show what GET /api/v1/models says of each version's training
    run: its state, in the page's language, and why a run MLflow holds as RUNNING is shown failed."""
    http, tokens, _, _, versions, _ = registry_app
    page = TestClient(http.app)
    assert page.post("/login", data={"token": tokens["ds"]}, follow_redirects=False).status_code == 303
    shown = {
        "en": {"full": "finished", "bare": "finished", "loose": "no run", "training": "running"},
        "zh-CN": {"full": "已完成", "bare": "已完成", "loose": "无运行记录", "training": "运行中"},
    }
    for lang, header, failed, why in (
        ("en", "Training run", "failed", "Why: "),
        ("zh-CN", "训练运行", "失败", "训练进程已不存在"),
    ):
        html = page.get("/lang", params={"to": lang, "next": "/models"}).text
        table = html.split('id="versions"', 1)[1].split("</table>", 1)[0]
        assert f'<th scope="col">{header}</th>' in table, table
        cells = {
            row.split("</td>", 1)[0]: re.findall(r'<td class="run">(.*?)</td>', row, re.S)[0]
            for row in table.split("<tr><td>")[1:]
        }
        for kind, label in shown[lang].items():
            assert cells[versions[kind]] == label, (lang, kind, cells)
        stale = cells[versions["killed"]]
        assert stale.startswith(failed) and why in stale, (lang, stale)
        assert '<span lang="en">MLflow still holds the run as RUNNING, but its training process' in stale


def test_a_refusal_names_one_role_or_several_as_a_sentence(registry_app):
    """The API's 403 said "this needs one of the roles: data_scientist" for a route of one role."""
    http, tokens, *_ = registry_app
    one = http.post("/api/v1/models/promote", json={}, headers=_h(tokens, "hr"))
    assert one.status_code == 403 and one.json()["detail"] == "this needs the role data_scientist"
    several = http.get("/api/v1/models", headers=_h(tokens, "mgr1"))
    assert several.json()["detail"] == "this needs one of the roles data_scientist, hr or admin"


@pytest.mark.parametrize("version", ["999", "abc", "1.0", "-1", "99999999999999999999"])
def test_an_unknown_version_is_404(registry_app, version):
    http, tokens, *_ = registry_app
    r = http.get(f"/api/v1/models/{version}/curves", headers=_h(tokens, "ds"))
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "not_found"
    assert f"no version {version!r}" in r.json()["detail"] and "GET /api/v1/models" in r.json()["detail"]
    r = http.get(f"/api/v1/models/{'9' * 65}/curves", headers=_h(tokens, "ds"))
    assert r.status_code == 422


def test_nothing_registered_yet_is_404(tmp_path):
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}")
    app = create_app(settings, model_source=StubSource(None))
    with TestClient(app) as http:
        tokens = seed(app, with_scores=False)
        r = http.get("/api/v1/models/1/curves", headers=_h(tokens, "ds"))
    assert r.status_code == 404 and "no version '1'" in r.json()["detail"]
    assert not (settings.home / "mlflow.db").exists()  # a read does not create the store


def test_an_mlflow_server_that_is_down_is_a_503_saying_to_retry(tmp_path, monkeypatch):
    """The registry is an MLflow server that is down, found so by the address check (before: 400, as if the
    caller had erred) and by MLflow's own call after the server had answered once (before: 500 after
    minutes of MLflow's retries, with a worker thread held all along)."""
    import os
    import socket

    from models import registry
    from serving.server import MLFLOW_HTTP_DEFAULTS, bound_mlflow_waits

    for name in MLFLOW_HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")  # an operator's own setting is kept
    bound_mlflow_waits()  # what `serve` does first
    assert (
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
        and os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    )
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # this test need not wait for the retries

    with socket.socket() as s:  # a port nothing listens on once the block ends
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'service.db'}", mlflow_tracking_uri=f"http://127.0.0.1:{port}"
    )
    app = create_app(settings, model_source=StubSource(None))
    with TestClient(app) as http:
        tokens = seed(app, with_scores=False)
        r = http.get("/api/v1/models", headers=_h(tokens, "ds"))
        assert r.status_code == 503 and r.headers["retry-after"], r.text
        assert "cannot reach the MLflow server" in r.json()["detail"] and r.json()["code"] == "unavailable"
        monkeypatch.setattr(registry, "_REACHED", {("127.0.0.1", port)})  # it answered before it went down
        r = http.get("/api/v1/models", headers=_h(tokens, "ds"))
        assert r.status_code == 503 and r.headers["retry-after"], r.text
        assert (
            "the model registry (the MLflow server of REPRADAR_MLFLOW_TRACKING_URI) cannot be reached"
            in r.json()["detail"]
        )
        # the dashboard's models page says it as a page, not as JSON on screen (it was JSON)
        page = TestClient(app, base_url="http://testserver")
        assert page.post(
            "/login", data={"token": tokens["ds"], "next": "/"}, follow_redirects=False
        ).is_redirect
        r = page.get("/models", headers={"accept": "text/html"})
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html"), r.text
        assert r.headers["retry-after"] and "<h1>503</h1>" in r.text and "cannot be reached" in r.text
        assert page.get("/api/v1/models").headers["content-type"] == "application/json"  # the API keeps JSON
