"""Commands that overlap on one REPRADAR_HOME (two promotions, a training and a promotion) against the
real MLflow store: no lost update, and what each one says stays true."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def race_model(trained, request):
    """Settings for a registered model of its own in the shared trained store (its champion and versions
    stay untouched), with versions 1-3 made from the trained version 1 (same files, same run)."""
    from models import registry
    from repradar.settings import Settings

    _, home, _ = trained
    settings = Settings(home=home, model_name=f"race-{request.node.name[-40:]}".replace("_", "-"))
    client = registry.configure(settings)
    v1 = client.get_model_version("repradar-risk", "1")
    client.create_registered_model(settings.model_name)
    for _ in range(3):
        client.create_model_version(settings.model_name, v1.source, run_id=v1.run_id)
    return settings, client


def _together(*calls):
    """Run the calls in threads started at once; their results (or exceptions) in order."""
    results = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i, call):
        start.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_two_promotions_at_once_each_gate_against_the_champion_they_replace(race_model):
    from models import registry
    from models.gate import _history, promote

    settings, client = race_model
    assert promote(settings, version="1").decision == "first"
    a, b = _together(
        lambda: promote(settings, version="2", force=True, reason="a"),
        lambda: promote(settings, version="3", force=True, reason="b"),
    )
    assert not isinstance(a, Exception) and not isinstance(b, Exception), (a, b)
    assert a.promoted and b.promoted, (a, b)
    first, second = sorted((a, b), key=lambda r: r.champion_version != "1")
    # the second was measured against, and says it replaced, the first one's version (not version 1)
    assert first.champion_version == "1"
    assert second.champion_version == first.challenger_version, (a.message, b.message)
    assert f"champion v{first.challenger_version}" in second.message
    name = settings.model_name
    assert str(registry.version_by_alias(client, name, "champion").version) == second.challenger_version
    second_mv = client.get_model_version(name, second.challenger_version)
    assert _history(second_mv)[-1]["previous_champion"] == first.challenger_version
    assert second_mv.tags["previous_champion"] == first.challenger_version
    replaced = client.get_model_version(name, first.challenger_version).tags
    assert replaced["replaced_by"] == second.challenger_version


def test_a_training_that_finishes_after_a_newer_one_leaves_it_the_challenger(race_model):
    """Two `repradar train` at once: version 3 took the alias, then version 2's training ended and took it
    back, though it had printed that 3 was the challenger. The newest version keeps it, and the older one's
    training learns which version holds it (its summary says so)."""
    from models import registry
    from training.pipeline import Claim, claim_challenger

    settings, client = race_model
    name = settings.model_name
    assert claim_challenger(client, settings, "3") == Claim()
    assert claim_challenger(client, settings, "2") == Claim("3", "challenger")
    assert str(registry.version_by_alias(client, name, "challenger").version) == "3"
    # both at once, in either order: the newest ends as challenger; the older one is told, unless it
    # finished first (then its alias was true when it said so)
    client.delete_registered_model_alias(name, "challenger")
    older, newer = _together(*(lambda v=v: claim_challenger(client, settings, v) for v in "12"))
    assert newer == Claim() and older in (Claim(), Claim("2", "challenger")), (older, newer)
    assert str(registry.version_by_alias(client, name, "challenger").version) == "2"
    # another training still running will take the alias when it ends: the one ending now says so, naming
    # its version once registered, else its run ("alias challenger" was true only until it ended)
    exp_id = registry.ensure_experiment(client, settings)
    # (tagged as this process's, which is alive: no other test's stale-run check ends or names it)
    running = client.create_run(exp_id, tags=registry.run_owner_tags()).info.run_id
    try:
        assert claim_challenger(client, settings, "3") == Claim(other_training=f"MLflow run {running}")
        assert claim_challenger(client, settings, "3", running) == Claim()  # its own run
        v4 = client.create_model_version(name, client.get_model_version(name, "1").source, run_id=running)
        assert claim_challenger(client, settings, "3") == Claim(other_training=f"version {v4.version}")
        assert str(registry.version_by_alias(client, name, "challenger").version) == "3"
    finally:
        client.set_terminated(running, "FINISHED")
    assert claim_challenger(client, settings, "3") == Claim()


def test_a_training_that_ends_after_a_newer_version_was_promoted_leaves_the_aliases_alone(race_model):
    """Version 3 (a training that started later) became challenger and was promoted (which took its
    challenger alias) while version 2's training was still running; version 2 then took the free alias:
    an older challenger behind a newer champion, so a plain `promote` was a rollback. It stays without."""
    from models import registry
    from training.pipeline import Claim, claim_challenger

    settings, client = race_model
    name = settings.model_name
    client.set_registered_model_alias(name, registry.CHAMPION, "3")
    assert claim_challenger(client, settings, "2") == Claim("3", "champion")
    assert registry.version_by_alias(client, name, registry.CHALLENGER) is None
    # an older champion (a rollback, or the first champion) leaves the alias to a newer version
    client.set_registered_model_alias(name, registry.CHAMPION, "1")
    assert claim_challenger(client, settings, "2") == Claim()
    assert str(registry.version_by_alias(client, name, registry.CHALLENGER).version) == "2"


def test_commands_opening_a_new_home_at_once_all_work(tmp_path):
    """Two `repradar train` on a new home: both opened the new MLflow store at once, and all but one ended
    in an internal error (MLflow's migration: "duplicate column name", or an alembic version row not
    found). Two processes open it together here; each gets a working store."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from models import registry\n"
        "from repradar.settings import Settings\n"
        "s = Settings(home=sys.argv[1])\n"
        "c = registry.configure(s)\n"
        "registry.ensure_experiment(c, s)\n"
        "print(len(registry.list_versions(c, s.model_name)))\n"
    )
    home = tmp_path / "home"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-600:] for _, err in outs]
    assert [out for out, _ in outs] == ["0\n"] * 2


def test_a_version_whose_training_still_runs_is_not_promoted(race_model, tmp_path):
    """`train` registers its version, then tags it and sets the challenger alias, and deletes it when it
    fails after that: promoted by number in that moment (it shows in `repradar models`), it became
    champion, then challenger too, or was deleted as champion. The gate refuses it until the run ends."""
    import mlflow.artifacts

    from models import registry
    from models.gate import HELDOUT_ARTIFACT, promote
    from repradar.errors import UserError

    settings, client = race_model
    name = settings.model_name
    assert promote(settings, version="1").promoted
    running = client.create_run(
        registry.ensure_experiment(client, settings), tags=registry.run_owner_tags()
    ).info.run_id
    try:
        # as far as `train` gets before it registers: the held-out set is logged
        v1_run = client.get_model_version(name, "1").run_id
        heldout = mlflow.artifacts.download_artifacts(
            run_id=v1_run, artifact_path=HELDOUT_ARTIFACT, dst_path=str(tmp_path)
        )
        client.log_artifact(running, heldout, "heldout")
        v = client.create_model_version(
            name, client.get_model_version(name, "1").source, run_id=running
        ).version
        with pytest.raises(
            UserError, match=f"version {v} is not complete yet: its training .* is still running"
        ):
            promote(settings, version=str(v), force=True, reason="in a hurry")
        assert str(registry.version_by_alias(client, name, "champion").version) == "1"
        assert not any(k.startswith("promotion_history") for k in client.get_model_version(name, v).tags)
    finally:
        client.set_terminated(running, "FINISHED")
