"""Bad input exits 2 with a message that says what to do."""

from __future__ import annotations

import os

import pytest

from tests.training.conftest import AS_OF, run_cli


def test_score_and_promote_without_any_model(tmp_path, sim_org):
    r = run_cli(
        tmp_path / "home",
        "score",
        "--data",
        str(sim_org),
        "--as-of",
        AS_OF.isoformat(),
        "--out",
        str(tmp_path / "s.csv"),
    )
    assert r.exit_code == 2 and "repradar promote" in r.stderr
    assert not (tmp_path / "s.csv").exists()
    r = run_cli(tmp_path / "home", "promote")
    assert r.exit_code == 2 and "repradar train" in r.stderr
    r = run_cli(tmp_path / "home", "models")
    assert r.exit_code == 0 and "no versions" in r.stdout


def test_scores_file_needs_a_known_suffix(tmp_path, sim_org):
    r = run_cli(
        tmp_path,
        "score",
        "--data",
        str(sim_org),
        "--as-of",
        AS_OF.isoformat(),
        "--out",
        str(tmp_path / "s.xlsx"),
    )
    assert r.exit_code == 2 and ".parquet or .csv" in r.stderr


@pytest.mark.slow
def test_as_of_outside_every_period(trained, sim_org, tmp_path):
    r = run_cli(
        trained, "score", "--data", str(sim_org), "--as-of", "2031-01-01", "--out", str(tmp_path / "s.csv")
    )
    assert r.exit_code == 2 and "outside every quota period" in r.stderr


def test_as_of_outside_every_period_is_said_before_the_model_loads(tmp_path, sim_org):
    # no model in this home: the day is refused first (loading a champion takes a minute), with the
    # range the quotas cover, not "run `repradar promote`"
    r = run_cli(
        tmp_path / "home",
        "score",
        "--data",
        str(sim_org),
        "--as-of",
        "2031-01-01",
        "--out",
        str(tmp_path / "s.csv"),
    )
    assert r.exit_code == 2 and "outside every quota period" in r.stderr and "quota periods cover" in r.stderr
    assert "loading the champion model" not in r.stderr and not (tmp_path / "s.csv").exists()


def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, sim_org):
    # a path through a file stands for any folder the command may not write in (read-only, no permission),
    # which root, running the tests, would still write in
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "scores" / "s.csv"
    r = run_cli(
        tmp_path / "home", "score", "--data", str(sim_org), "--as-of", AS_OF.isoformat(), "--out", str(out)
    )
    assert r.exit_code == 2 and f"--out {out}: {tmp_path / 'afile'} is a file, not a folder" in r.stderr, (
        r.stderr
    )
    assert "loading the champion model" not in r.stderr


@pytest.mark.slow
def test_a_full_disk_while_writing_the_scores_is_said_and_leaves_the_old_file(
    trained, sim_org, tmp_path, monkeypatch
):
    import errno

    import pyarrow.parquet as pq

    out = tmp_path / "s.parquet"
    out.write_bytes(b"last week's scores")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    r = run_cli(trained, "score", "--data", str(sim_org), "--as-of", AS_OF.isoformat(), "--out", str(out))
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    assert f"could not write {out}: No space left on device; nothing was written there" in r.stderr
    assert out.read_bytes() == b"last week's scores" and [p.name for p in tmp_path.iterdir()] == [out.name]


def test_folder_failing_validation(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "reps.csv").write_text("rep_id,manager_id,hire_date\nr1,m1,2024-01-01\nr1,m1,not-a-date\n")
    for cmd in (
        ["train", "--data", str(bad)],
        ["score", "--data", str(bad), "--as-of", "2024-01-10", "--out", str(tmp_path / "s.csv")],
    ):
        r = run_cli(tmp_path / "home", *cmd)
        assert r.exit_code == 2, r.stdout + r.stderr
        assert "error:" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_too_few_finished_periods(tmp_path):
    from simulator.simulate import SimConfig, simulate

    data = tmp_path / "short"
    simulate(SimConfig(n_reps=12, n_periods=2, seed=1, oracle_sims=0), data)
    r = run_cli(tmp_path / "home", "train", "--data", str(data))
    assert r.exit_code == 2 and "finished quota periods" in r.stderr, r.stderr


@pytest.mark.slow
def test_too_few_misses(sim_org, tmp_path):
    r = run_cli(tmp_path / "home", "train", "--data", str(sim_org), env={"REPRADAR_MISS_THRESHOLD": "0.001"})
    assert r.exit_code == 2 and "missed" in r.stderr and "REPRADAR_MIN_MISSES" in r.stderr, r.stderr


@pytest.mark.parametrize(
    ("param", "says"),
    [
        ("num_leave=7", "did you mean 'num_leaves'?"),  # a typo would be silently ignored by LightGBM
        ("num_leaves=abc", "should be of type int"),
        ("learning_rate=-1", "learning_rate"),
        ("objective=regression", "binary log-odds"),
        ("seed=7", "use --seed"),  # set after the overrides: would be silently ignored
        ("num_threads=2", "REPRADAR_TRAIN_NUM_THREADS"),
        # early stopping is on the validation log-loss: another metric would change where the booster
        # is cut (an unknown one failed with an internal error after the build), DART cannot stop early
        ("metric=foo", "early stopping on the validation fold's log-loss"),
        ("metric=auc", "early stopping on the validation fold's log-loss"),
        ("metrics=auc", "early stopping on the validation fold's log-loss"),
        ("early_stopping_round=5", "100 rounds"),
        ("boosting=dart", "cannot early-stop"),
        ("boosting_type=DART", "cannot early-stop"),
        # an empty value trained with LightGBM's default and logged '' as the parameter
        ("num_leaves=", "give both a name and a value"),
        ("num_leaves= ", "give both a name and a value"),
        ("=5", "give both a name and a value"),
    ],
)
def test_bad_lightgbm_param_is_refused_before_any_work(tmp_path, param, says):
    # the data folder does not exist: the parameter is refused before the data is even looked at
    r = run_cli(tmp_path / "home", "train", "--data", str(tmp_path / "nope"), "--param", param)
    assert r.exit_code == 2, (r.stdout, r.stderr, r.exception)
    assert says in r.stderr and "--param" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("params", "says"),
    [
        # the first was silently dropped (the last one won), or LightGBM picked one of two aliases
        (["num_leaves=7", "num_leaves=9"], "num_leaves: given twice"),
        (["num_leaves=7", "max_leaves=9"], "the same LightGBM parameter (num_leaves) twice"),
    ],
)
def test_one_parameter_given_twice_is_refused(tmp_path, params, says):
    args = [a for p in params for a in ("--param", p)]
    r = run_cli(tmp_path / "home", "train", "--data", str(tmp_path / "nope"), *args)
    assert r.exit_code == 2 and says in r.stderr, (r.stdout, r.stderr, r.exception)


def test_good_lightgbm_params_pass_the_check():
    from training.booster import check_params

    check_params({"num_leaves": 7, "min_data_in_leaf": "auto", "n_estimators": 50, "lambda_l1": 0.5})
    check_params({"num_iterations": 1, "num_leaves": 2})


# `score` read the setting only when it suggested interventions, after validating the folder,
# building the features and loading the champion (20 s on 300 reps); `--playbook` was checked at once.
@pytest.mark.parametrize(
    "command", [["train"], ["score", "--as-of", "2024-04-22", "--out", "scores.csv"]], ids=["train", "score"]
)
def test_broken_playbook_setting_is_refused_before_any_work(tmp_path, command):
    bad = tmp_path / "playbook.yaml"
    bad.write_text("rules: [\n")
    for playbook, says in ((bad, "line"), (tmp_path / "missing.yaml", "does not exist")):
        # the data folder does not exist either: the playbook is refused before the data is looked at
        r = run_cli(
            tmp_path / "home",
            *command,
            "--data",
            str(tmp_path / "nope"),
            env={"REPRADAR_PLAYBOOK": str(playbook)},
        )
        assert r.exit_code == 2 and "playbook" in r.stderr and says in r.stderr, (r.stderr, r.exception)


def test_train_says_the_playbook_s_warnings_before_its_work(tmp_path):
    """A playbook that loads with warnings (an engagement metric the contract does not know, maybe a typo)
    was bundled by `train` without a word; the warnings showed first in the model's scoring notes."""
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(
        'version: 1\nrules:\n  - name: survey\n    group: wellbeing\n    when: "eng__pulse_scor_mean_28d < 5"\n'
        '    suggest: wellbeing_support\n    reason: {en: "Pulse", zh: "情绪"}\n'
    )
    r = run_cli(
        tmp_path / "home", "train", "--data", str(tmp_path / "nope"), env={"REPRADAR_PLAYBOOK": str(playbook)}
    )
    assert r.exit_code == 2 and "does not exist" in r.stderr, r.stderr
    said = r.stderr[: r.stderr.index("does not exist")]
    assert f"warning: playbook {playbook}, line 5: " in said and "did you mean pulse_score?" in said, r.stderr


def test_a_refused_param_says_it_once_without_lightgbm_s_own_fatal_line(tmp_path):
    # LightGBM's C++ side writes "[LightGBM] [Fatal] ... at /__w/..." to file descriptor 2 before it
    # raises: a real process is needed to see it (the in-process runner only captures sys.stderr)
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "repradar"
    done = subprocess.run(
        [str(script), "train", "--data", str(tmp_path / "nope"), "--param", "num_leaves=-3"],
        capture_output=True,
        text=True,
        env={**os.environ, "REPRADAR_HOME": str(tmp_path / "home")},
    )
    assert done.returncode == 2, done.stderr
    assert "num_leaves" in done.stderr and "[Fatal]" not in done.stderr and "/__w/" not in done.stderr
