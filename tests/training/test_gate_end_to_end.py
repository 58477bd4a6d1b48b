"""The promotion gate against a real registry: a crippled challenger is refused, --force records why,
and rolling back to the better version passes the gate."""

from __future__ import annotations

import json

import pytest

from tests.training.conftest import run_cli

pytestmark = pytest.mark.slow


def test_gate_refuses_a_worse_model_and_force_records_its_reason(trained, sim_org, settings):
    from models import registry

    # A deliberately crippled challenger: one stump, trained as if the amounts were in euros.
    r = run_cli(
        trained,
        "train",
        "--data",
        str(sim_org),
        "--param",
        "num_iterations=1",
        "--param",
        "num_leaves=2",
        env={"REPRADAR_CURRENCY": "EUR"},
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    client = registry.configure(settings)
    v = str(registry.version_by_alias(client, settings.model_name, "challenger").version)
    assert str(v) != "1"

    # the overrides are kept as given, on the run and the version, and `repradar models` shows them:
    # the lgbm.* parameters mix them with the defaults, and a retrain needs them to reproduce the version
    mv = client.get_model_version(settings.model_name, v)
    assert json.loads(mv.tags["param_overrides"]) == {"num_iterations": 1, "num_leaves": 2}
    assert client.get_run(mv.run_id).data.tags["repradar.param_overrides"] == mv.tags["param_overrides"]
    rows = {
        line.split()[0]: line
        for line in run_cli(trained, "models").stdout.splitlines()[2:]
        if line[:7].strip()
    }
    assert rows[v].rstrip().endswith("num_iterations=1 num_leaves=2") and rows["1"].rstrip().endswith(" -")
    # each version's currency (the spec's, kept as a version tag), in a column of its own
    assert (
        mv.tags["currency"] == "EUR" and "  currency  " in run_cli(trained, "models").stdout.splitlines()[1]
    )
    assert rows[v].split()[8] == "EUR" and rows["1"].split()[8] == "USD", (rows[v], rows["1"])
    listed = {x["version"]: x for x in json.loads(run_cli(trained, "models", "--json").stdout)}
    assert listed[v]["currency"] == "EUR" and listed["1"]["currency"] == "USD"
    assert (
        next(x for x in json.loads(run_cli(trained, "models", "--json").stdout) if x["version"] == "1")[
            "param_overrides"
        ]
        == {}
    )

    r = run_cli(trained, "promote")
    assert r.exit_code == 2
    assert "refused" in r.stderr and f"challenger v{v}" in r.stderr and "champion v1" in r.stderr
    assert "different data" not in r.stderr  # both trained on sim_org
    assert f"v{v} writes amounts in EUR and champion v1 in USD" in r.stderr
    assert "ROC-AUC" in r.stderr and "Brier" in r.stderr
    assert "ROC-AUC, first 50% of the period" in r.stderr  # the weeks an early warning is for
    assert str(registry.version_by_alias(client, settings.model_name, "champion").version) == "1"

    r = run_cli(trained, "promote", "--force")
    assert r.exit_code == 2 and "--reason" in r.stderr

    r = run_cli(
        trained, "promote", "--force", "--reason", "testing the override", env={"REPRADAR_OPERATOR": "alice"}
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    mv = client.get_model_version(settings.model_name, str(v))
    assert str(registry.version_by_alias(client, settings.model_name, "champion").version) == str(v)
    assert mv.tags["promotion_reason"] == "testing the override"
    assert mv.tags["promotion_forced"] == "true" and mv.tags["promoted_by"] == "alice"
    history = [json.loads(mv.tags[k]) for k in sorted(mv.tags) if k.startswith("promotion_history.")]
    assert [h["decision"] for h in history] == ["refused", "forced"]
    assert history[1]["figures"]["champion"]["version"] == "1"
    assert history[1]["figures"]["challenger"]["auc"] < history[1]["figures"]["champion"]["auc"]
    # the early-period AUC is measured on the rows at most half-way into their period, a real subset
    early = history[1]["figures"]["champion"]
    assert early["early_share"] == 0.5 and 0 < early["n_early_rows"] < early["n_rows"]
    assert 0.5 < early["auc_early"] < early["auc"]  # early weeks are harder than the whole period
    assert history[1]["tolerances"]["early_share"] == 0.5
    assert history[1]["currencies"] == {"challenger": "EUR", "champion": "USD"}
    # the promoted challenger is champion only; the refused attempt removed nothing
    assert registry.version_by_alias(client, settings.model_name, "challenger") is None
    assert history[1]["removed_aliases"] == ["challenger"] and "removed_aliases" not in history[0]
    assert "the alias challenger is removed" in r.stdout

    r = run_cli(trained, "models")
    assert r.exit_code == 0 and "testing the override" in r.stdout and "refused" in r.stdout
    assert "reason: testing the override; alias challenger removed" in r.stdout

    # the command line's promotions are in the service's audit trail, each request before its outcome
    import sqlite3

    with sqlite3.connect(trained / "repradar.db") as db:
        events = db.execute(
            "SELECT action, actor, outcome, resource_id FROM audit_log WHERE action LIKE 'model.%' ORDER BY id"
        ).fetchall()
    assert events[-4:] == [
        ("model.promote_request", events[-4][1], "requested", None),
        ("model.promote", events[-4][1], "refused", str(v)),
        ("model.promote_request", "cli:alice", "requested", None),
        ("model.promote", "cli:alice", "ok", str(v)),
    ]
    r = run_cli(trained, "promote", "--force", "--reason", "bad\x00reason")
    assert r.exit_code == 2 and "control character" in r.stderr

    # Rolling back to the better version passes the gate on its own. (Version 1 is recorded as trained
    # on other data: the gate says its figures are measured on version 1's held-out rows.)
    recorded = client.get_model_version(settings.model_name, "1").tags["data_sha256"]
    client.set_model_version_tag(settings.model_name, "1", "data_sha256", "0" * 64)
    r = run_cli(trained, "promote", "--version", "1")
    client.set_model_version_tag(settings.model_name, "1", "data_sha256", recorded)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert f"v1 and champion v{v} were trained on different data (data_sha256 000000000000" in r.stdout
    assert str(registry.version_by_alias(client, settings.model_name, "champion").version) == "1"
    assert client.get_model_version(settings.model_name, "1").tags["replaced_by"] == str(v)
    listed = run_cli(trained, "models").stdout
    assert f"replaced as champion by v{v}" in listed  # version 1's line: replaced, then back
    lines = listed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{'1':>7}  "))
    block = [line.strip() for line in lines[start + 1 :]]
    events = [
        "replaced" if "replaced as champion" in line else line.split()[1]
        for line in block
        if line[:4].isdigit()
    ]
    assert events[-2:] == ["replaced", "passed"], block  # in the order they happened, the rollback last
    assert "replaced as champion by v1" in listed  # the forced version's replacement by the rollback

    r = run_cli(trained, "promote", "--version", "1")
    assert r.exit_code == 0 and "already the champion" in r.stdout

    r = run_cli(trained, "promote", "--version", "999")
    assert r.exit_code == 2 and "no version 999" in r.stderr
