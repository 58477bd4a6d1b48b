"""End to end with a real trained model: a batch job scores a simulated org, and a promotion hot-swaps
the champion while clients keep calling (zero failures; every response names the old or new version).
"""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import pytest

from repradar.settings import Settings
from serving.app import create_app
from serving.auth import add_user

from .conftest import LiveServer

pytestmark = pytest.mark.slow


def _wait_ready(c, timeout=60):
    """/health/ready's answer once the champion is in: the first load goes on behind the start-up
    when it takes longer than serving.app.FIRST_LOAD_WAIT_S (as on a loaded machine), and the probe
    says not_ready meanwhile, by design."""
    deadline = time.time() + timeout
    while True:
        body = c.get("/health/ready").json()
        if body["status"] == "ready" or time.time() > deadline:
            return body
        time.sleep(0.2)


def _wait_job(c, h, job_id, timeout=180):
    deadline = time.time() + timeout
    while True:
        body = c.get(f"/api/v1/jobs/{job_id}", headers=h).json()
        if body["status"] in ("succeeded", "failed"):
            return body
        assert time.time() < deadline, body
        time.sleep(0.2)


def test_batch_job_then_hot_swap_under_load(trained, tmp_path, db_url):
    data, home0, as_of = trained
    home = tmp_path / "home"
    shutil.copytree(home0, home)  # the registry is changed by the promotion: work on a copy
    settings = Settings(home=home, database_url=db_url, data_dir=data, model_poll_s=0.2, job_heartbeat_s=0.5)
    app = create_app(settings)
    with LiveServer(app) as server:
        with app.state.sessions.begin() as s:
            hr = {"Authorization": f"Bearer {add_user(s, 'hr', ['hr'])[1]}"}
            ds = {"Authorization": f"Bearer {add_user(s, 'ds', ['data_scientist'])[1]}"}
        c = httpx.Client(base_url=server.url, timeout=60)
        assert _wait_ready(c) == {"status": "ready", "model_version": "1", "detail": None}

        # a real batch job with the champion
        job = c.post("/api/v1/jobs", json={"as_of": as_of.isoformat()}, headers=hr)
        assert job.status_code == 201, job.text
        done = _wait_job(c, hr, job.json()["id"])
        assert done["status"] == "succeeded", done
        assert done["model_version"] == "1" and done["rows"] > 0
        listed = c.get("/api/v1/early-warning", headers=hr).json()
        assert listed["as_of"] == as_of.isoformat() and listed["items"]
        rep_id = listed["items"][0]["rep_id"]
        rep = c.get(f"/api/v1/reps/{rep_id}", headers=hr).json()
        assert rep["score"]["model_version"] == "1" and rep["score"]["drivers"]
        assert rep["rep"]["name"]  # names come from the data folder's reps table

        # clients hammer the service while version 2 is promoted through the API
        stop = threading.Event()
        seen: list[list[tuple[int, str]]] = [[], []]
        errors: list[str] = []

        def client_loop(i: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as cc:
                paths = [f"/api/v1/reps/{rep_id}", "/api/v1/early-warning", "/api/v1/models/current"]
                k = 0
                while not stop.is_set():
                    try:
                        r = cc.get(paths[k % len(paths)], headers=hr)
                        seen[i].append((r.status_code, r.headers.get("x-model-version", "")))
                    except Exception as exc:  # a dropped connection is a failure too
                        errors.append(repr(exc))
                    k += 1

        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        promoted = c.post("/api/v1/models/promote", json={"version": "2"}, headers=ds)
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["promoted"] is True
        deadline = time.time() + 60
        while not any(v == "2" for s_ in seen for _, v in s_[-5:]):
            assert time.time() < deadline, "version 2 never served"
            time.sleep(0.05)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)

        assert not errors, errors[:3]
        for s_ in seen:
            assert s_ and all(status == 200 for status, _ in s_), [x for x in s_ if x[0] != 200][:3]
            versions = [v for _, v in s_]
            assert set(versions) <= {"1", "2"}
            assert "2" in versions
            first_new = versions.index("2")
            assert all(v == "2" for v in versions[first_new:]), "went back to the old model"
        assert c.get("/health/ready").json()["model_version"] == "2"
        audit = c.get("/api/v1/audit", params={"action": "model.promote"}, headers=hr).json()
        assert [(e["resource_id"], e["outcome"], e["actor"]) for e in audit["items"]] == [("2", "ok", "ds")]

        # the same (data, as-of) with the new champion is a new job
        again = c.post("/api/v1/jobs", json={"as_of": as_of.isoformat()}, headers=hr)
        assert again.status_code == 201 and again.json()["model_version"] == "2"
        _wait_job(c, hr, again.json()["id"])
        models = c.get("/api/v1/models", headers=ds).json()
        assert models["champion"] == "2" and models["serving_version"] == "2"
        assert {v["version"] for v in models["versions"]} == {"1", "2"}
        assert models["promotions"] and models["promotions"][0]["version"] == "2"
        c.close()


def test_promotion_refused_by_the_gate_is_409_with_figures(trained, tmp_path, monkeypatch):
    """A gate refusal is a 409 with the figures; forcing needs a reason (422 without)."""
    data, home0, _ = trained
    home = tmp_path / "home"
    shutil.copytree(home0, home)
    # Version 2 is version 1 again, so the real verdict would pass: make the gate refuse it.
    monkeypatch.setattr("models.gate.gate_decision", lambda *a, **k: (False, ["AUC below the champion's"]))
    settings = Settings(home=home, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    from fastapi.testclient import TestClient

    app = create_app(settings)
    with TestClient(app) as c:
        with app.state.sessions.begin() as s:
            ds = {"Authorization": f"Bearer {add_user(s, 'ds', ['data_scientist'])[1]}"}
        r = c.post("/api/v1/models/promote", json={"version": "2"}, headers=ds)
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["promoted"] is False and "refused" in body["message"] and "challenger" in body["figures"]
        r = c.post("/api/v1/models/promote", json={"version": "2", "force": True}, headers=ds)
        assert r.status_code == 422 and "reason" in r.json()["detail"]
        r = c.post("/api/v1/models/promote", json={"version": "99"}, headers=ds)
        assert r.status_code == 404 and "no version '99'" in r.json()["detail"]
