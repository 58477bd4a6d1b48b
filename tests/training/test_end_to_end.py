"""train -> promote -> score on a small simulated organisation, against a real sqlite MLflow store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repradar.cli import STARTING
from tests.training.conftest import AS_OF, run_cli, write_tables

pytestmark = pytest.mark.slow


def test_train_logs_a_complete_run_and_registers_a_challenger(settings):
    from models import registry

    client = registry.configure(settings)
    mv = client.get_model_version(settings.model_name, "1")
    # promoted: it left the challenger alias (one version was both), and its history says so
    assert registry.aliases_by_version(client, settings.model_name)["1"] == ["champion"]
    assert json.loads(mv.tags["promotion_history.001"])["removed_aliases"] == ["challenger"]
    run = client.get_run(mv.run_id)
    m, p, t = run.data.metrics, run.data.params, run.data.tags
    for model in ("model", "pacing", "logistic"):
        for k in ("auc", "pr_auc", "brier", "ece", "top10_precision"):
            assert f"test_{model}_{k}" in m
    assert "oracle_rows_oracle_auc" in m  # the simulator's truth/ was found and scored
    assert p["calibrator"] in ("platt", "isotonic") and int(p["best_iteration"]) > 0
    # calibrated on the validation period and the periods before it, as many as the setting asks
    windows = p["calibration_windows"].split(",")
    assert int(p["calibration_periods"]) == settings.calibration_periods == len(windows) > 1
    assert windows[-1] == p["split.valid_window"] and windows == sorted(windows)
    assert t["git_commit"]  # a sha, or "unknown" outside a git checkout
    assert t["git_dirty"] in ("true", "false", "unknown")
    from training.pipeline import data_fingerprint

    assert (
        t["repradar.data_sha256"] == mv.tags["data_sha256"] == data_fingerprint(Path(t["repradar.data_dir"]))
    )
    import hashlib

    import models

    shipped = hashlib.sha256((Path(models.__file__).parent / "playbook.yaml").read_bytes()).hexdigest()
    assert t["repradar.playbook"].startswith("default") and t["repradar.playbook_sha256"] == shipped
    assert mv.tags["playbook_sha256"] == shipped
    # what tells two versions apart, in the run, on the version and in `repradar models`
    assert p["seed"] == mv.tags["seed"] == str(settings.seed)
    listing = run_cli(settings.home, "models")
    row = next(line for line in listing.stdout.splitlines() if line.strip().startswith("1 "))
    assert mv.tags["data_sha256"][:8] in row and f" {settings.seed} " in row, listing.stdout
    # the feature definitions it learnt on: in the bundled spec, on the run and on the version
    from features.registry import definitions_fingerprint
    from models.loading import load_version

    here = definitions_fingerprint()
    assert load_version(settings, "1").pyfunc.spec_.meta["features_sha256"] == here
    assert t["repradar.features_sha256"] == mv.tags["features_sha256"] == here
    assert "  features  " in listing.stdout.splitlines()[1] and " current " in row, listing.stdout
    assert t["repradar.history_fallback"] == "false"
    # which process trained it (registry.end_stale_runs); the run a killed training left was ended
    assert t["repradar.host"] and int(t["repradar.pid"]) > 0 and "repradar.ended_by" not in t
    (stale,) = client.search_runs([run.info.experiment_id], "tags.`repradar.planted` = 'stale'")
    assert stale.info.status == "FAILED" and stale.data.tags["repradar.ended_by"] == "stale-run-check"
    contexts = {d.tags[0].value for d in run.inputs.dataset_inputs}
    assert contexts == {"training", "validation", "test"}
    assert all(d.dataset.digest and d.dataset.source for d in run.inputs.dataset_inputs)
    lead = client.get_metric_history(mv.run_id, "lead_model_auc")
    assert sorted(x.step for x in lead)[:3] == [1, 2, 3]
    arts = {a.path for a in client.list_artifacts(mv.run_id)} | {
        a.path for d in ("plots", "heldout", "evaluation") for a in client.list_artifacts(mv.run_id, d)
    }
    for a in (
        "model_card.md",
        "model_card.zh-CN.md",
        "plots/calibration.png",
        "plots/lead_time.png",
        "plots/shap_summary.png",
        "heldout/heldout_features.parquet",
        "evaluation/metrics.csv",
    ):
        assert a in arts, a
    for k in ("test_auc", "test_brier", "test_auc_week3", "data_window", "run_id"):
        assert mv.tags.get(k), k


def test_the_model_bundle_holds_text_booster_json_calibrator_spec_and_signature(settings, tmp_path):
    import mlflow.artifacts
    import yaml

    local = Path(
        mlflow.artifacts.download_artifacts(f"models:/{settings.model_name}/1", dst_path=str(tmp_path))
    )
    files = {p.name for p in local.rglob("*")}
    assert {"booster.txt", "calibrator.json", "feature_spec.json", "playbook.json", "MLmodel"} <= files
    booster = next(local.rglob("booster.txt")).read_text()
    assert booster.startswith("tree\n")  # LightGBM's own text format, not a pickle
    assert json.loads(next(local.rglob("calibrator.json")).read_text())["kind"] in ("platt", "isotonic")
    spec = json.loads(next(local.rglob("feature_spec.json")).read_text())
    assert spec["groups"]["pipeline_coverage"] == "pipeline" and spec["monotone"]["pipeline_coverage"] == -1
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    assert "signature" in mlmodel and "saved_input_example_info" in mlmodel
    from mlflow.models import Model

    inputs = Model.load(str(local)).signature.inputs
    assert inputs.input_names() == spec["feature_names"] and all(c.required for c in inputs.inputs)
    assert (local / "requirements.txt").read_text().count("lightgbm") == 1


def test_card_reports_model_against_baselines(settings, tmp_path):
    import mlflow.artifacts

    from models import registry

    client = registry.configure(settings)
    run_id = client.get_model_version(settings.model_name, "1").run_id
    card = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="model_card.md", dst_path=str(tmp_path)
        )
    ).read_text()
    for needle in (
        "training periods",
        "held-out",
        "history fallback used: **no**",
        "| pacing |",
        "| logistic |",
        "At week 3",
        "oracle",
        "Known limits",
        "`pipeline_coverage`",
    ):
        assert needle in card, needle
    from features.registry import definitions_fingerprint

    assert f"feature definitions: sha256 `{definitions_fingerprint()}`" in card


def test_the_card_in_chinese_says_the_same_facts_in_chinese(settings, tmp_path):
    """model_card.zh-CN.md: the English card's facts (every number, id and name) in Chinese, counts
    with thousands separators in both as the report writes them, and no English sentence left."""
    import re

    import mlflow.artifacts

    from models import registry
    from models.loading import load_version
    from tests.reporting.conftest import english_runs

    client = registry.configure(settings)
    run_id = client.get_model_version(settings.model_name, "1").run_id
    en, zh = (
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=name, dst_path=str(tmp_path / name)
            )
        ).read_text(encoding="utf-8")
        for name in ("model_card.md", "model_card.zh-CN.md")
    )
    assert zh.startswith(f"# 模型卡：{settings.model_name}\n") and "## 已知局限" in zh

    def numbers(card: str) -> list[str]:
        return sorted(re.findall(r"\d+(?:\.\d+)?", re.sub(r"(?<=\d),(?=\d{3})", "", card)))

    assert numbers(zh) == numbers(en)
    ids = set(re.findall(r"`([^`]+)`", en))
    assert ids == set(re.findall(r"`([^`]+)`", zh)) and run_id in ids
    held = next(line for line in zh.splitlines() if line.startswith("| 模型 |"))
    assert "ROC-AUC" in held and "Brier" in held
    # counts with thousands separators in both cards (models.i18n.format_count)
    big = next(int(n.replace(",", "")) for n in re.findall(r"\(([\d,]+) snapshots", en) if "," in n)
    assert big >= 1000 and f"（{big:,} 个快照" in zh
    names = load_version(settings, "1").pyfunc.feature_names
    assert english_runs(zh, keep=(*names, "ROC-AUC", "PR-AUC", "log-loss")) == []
    # the inputs counted as `train` counts them (the card said "96 features" for 67 and their peer medians)
    peers = sum(n.startswith("peer__") for n in names)
    assert f"- {len(names)} model inputs ({len(names) - peers} features and {peers} peer medians); " in en
    assert f"- {len(names)} 个模型输入（{len(names) - peers} 个特征和 {peers} 个同类销售中位数）；" in zh


def test_score_command_writes_the_output_contract(trained, sim_org, tmp_path):
    out = tmp_path / "scores.csv"
    result = run_cli(
        trained, "score", "--data", str(sim_org), "--as-of", AS_OF.isoformat(), "--out", str(out)
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    from models.scoring import SCORE_COLUMNS, read_scores

    df = read_scores(out)
    assert list(df.columns[: len(SCORE_COLUMNS)]) == SCORE_COLUMNS
    assert len(df) > 20 and df["rep_id"].is_unique
    assert ((df["risk"] > 0) & (df["risk"] < 1)).all()
    assert sorted(df["rank"]) == list(range(1, len(df) + 1))
    assert set(df["risk_band"]) <= {"high", "medium", "low"}
    assert (df["as_of"] == pd.Timestamp(AS_OF)).all() and (
        df["period_start"] == pd.Timestamp("2024-04-01")
    ).all()
    assert (df["model_version"].astype(str) == "1").all()
    from features.contract import INTERVENTION_IDS

    assert all(set(v) <= set(INTERVENTION_IDS) for v in df["interventions"])
    assert any(v for v in df["interventions"]), "the playbook suggests something for someone"
    d = df["drivers"].iloc[0]
    assert d and {"feature", "group", "value", "contribution"} <= set(d[0])
    _no_strength_reads_as_the_reason(df)
    # the stages on stderr as they start, in order; stdout keeps the results only
    stages = [line.split("] ", 1)[1] for line in result.stderr.splitlines() if line.startswith("[")]
    stages = [s for s in stages if s != STARTING]  # said when a busy machine took 2 s to the first stage
    assert [s.split(" ")[0] for s in stages] == ["reading", "loading", "building", "scoring"], stages
    assert f"scoring and explaining {len(df)} reps" in stages[-1]
    assert "[" not in result.stdout


def _no_strength_reads_as_the_reason(df):
    """A driver where the rep is better than the peers shown either cites the organisation's figure
    (where the rep is behind) or says it is better than peers; never a strength read as the reason."""
    from features.registry import get
    from models.drivers import peer_side

    strengths = 0
    for _, row in df.iterrows():
        for d in [*row["driver_groups"], *row["drivers"]]:
            if d["feature"].startswith("peer__"):  # its `value` is the peers' own (outputs.md)
                continue
            if peer_side(d["value"], d["peer_value"], get(d["feature"]).better) == -1:
                strengths += 1
                assert "across the organisation" in d["text_en"] or "better than peers" in d["text_en"], d
    assert strengths, "the simulated org has drivers where the rep is ahead of peers"


def test_an_employed_rep_without_a_quota_is_named_not_silently_left_out(trained, sim_tables, tmp_path):
    reps, quotas = sim_tables.reps, sim_tables.quotas
    ends = reps["end_date"] if "end_date" in reps else pd.Series(pd.NaT, index=reps.index)
    employed = reps[(pd.to_datetime(reps["hire_date"]) <= pd.Timestamp(AS_OF)) & ends.isna()]
    gone = str(employed["rep_id"].iloc[0])
    tables = sim_tables.replace(quotas=quotas[quotas["rep_id"].astype(str) != gone])
    folder = write_tables(tables, tmp_path / "data")
    out = tmp_path / "scores.csv"
    result = run_cli(trained, "score", "--data", str(folder), "--as-of", AS_OF.isoformat(), "--out", str(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert (
        f"note: 1 rep(s) employed on {AS_OF} are not scored: no quota period of theirs contains"
        in result.stdout
    )
    assert f"({gone})" in result.stdout


def test_scoring_twice_gives_byte_identical_files(sim_tables, model_v1, settings, tmp_path):
    from models.scoring import score_tables, write_scores

    for suffix in (".parquet", ".csv"):
        a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
        write_scores(score_tables(sim_tables, AS_OF, model_v1, settings), a)
        write_scores(score_tables(sim_tables, AS_OF, model_v1, settings), b)
        assert a.read_bytes() == b.read_bytes(), suffix


def test_leak_scoring_from_an_export_cut_at_as_of_gives_the_same_risks(
    sim_org, sim_tables, model_v1, settings, tmp_path
):
    from features.pit import truncate_at
    from models.scoring import score_folder

    cut_tables = truncate_at(sim_tables, AS_OF)
    cut = write_tables(cut_tables, tmp_path / "cut")
    full = score_folder(sim_org, AS_OF, settings, model=model_v1).set_index("rep_id")
    early = score_folder(cut, AS_OF, settings, model=model_v1).set_index("rep_id")
    assert set(early.index) == set(full.index)
    np.testing.assert_allclose(early.loc[full.index, "risk"], full["risk"], rtol=0, atol=1e-12)


def test_attributes_never_reach_the_model(sim_org, sim_tables, model_v1, settings, tmp_path):
    from models.scoring import score_tables

    reps = sim_tables.reps
    attributes = [
        c
        for c in reps.columns
        if c not in ("rep_id", "manager_id", "hire_date", "end_date", "team", "region", "segment")
    ]
    assert {"name", "gender"} <= set(attributes)
    names = set(model_v1.pyfunc.feature_names)
    assert not any(a in n for a in attributes for n in names)
    rng = np.random.default_rng(0)
    shuffled = reps.copy()
    for a in attributes:
        shuffled[a] = rng.permutation(shuffled[a].to_numpy())
    shuffled["name"] = "Somebody Else"
    base = score_tables(sim_tables, AS_OF, model_v1, settings).set_index("rep_id")["risk"]
    other = score_tables(sim_tables.replace(reps=shuffled), AS_OF, model_v1, settings).set_index("rep_id")[
        "risk"
    ]
    pd.testing.assert_series_equal(base.sort_index(), other.sort_index())


def test_more_won_revenue_or_open_pipeline_never_raises_risk(model_v1, heldout):
    pyfunc = model_v1.pyfunc
    rows = heldout.reset_index(drop=True)
    base = pyfunc.predict_frame(rows)["risk"].to_numpy()
    won = ["attainment_to_date", "pace_gap"]
    pipeline = ["open_pipeline_in_period", "pipeline_coverage", "open_pipeline_total"]
    assert all(pyfunc.spec_.monotone[n] == -1 for n in won + pipeline)
    for cols in ([c] for c in won + pipeline):
        for scale in (0.05, 0.5, 3.0):
            more = rows.copy()
            for c in cols:
                more[c] = more[c] + scale * (rows[c].abs().median() + 1e-3)
            assert np.all(pyfunc.predict_frame(more)["risk"].to_numpy() <= base + 1e-12), (cols, scale)
    # won revenue moves attainment and pace gap together
    more = rows.copy()
    more[won] = more[won] + 0.2
    assert np.all(pyfunc.predict_frame(more)["risk"].to_numpy() <= base + 1e-12)


def test_same_seed_same_model(sim_tables, settings, model_v1):
    from features.build import build_training_set
    from training.pipeline import KEYS, fit_all, model_features
    from training.split import time_split

    fs = build_training_set(sim_tables, every_days=settings.snapshot_every_days)
    frame = fs.frame.sort_values(KEYS, kind="mergesort").reset_index(drop=True)
    refit = fit_all(frame, time_split(frame), model_features(fs), settings)
    assert refit.booster.booster_.model_to_string() == model_v1.pyfunc.booster_.model_to_string()
    assert refit.calibrator.to_dict() == model_v1.pyfunc.calibrator_.to_dict()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_treeshap_drivers_equal_shap_and_add_up_to_the_raw_score(model_v1, heldout):
    import shap

    pyfunc = model_v1.pyfunc
    rows = heldout.sample(150, random_state=0)
    contrib = pyfunc.contributions(rows)
    names = pyfunc.feature_names
    raw = pyfunc.predict_frame(rows)["raw_score"].to_numpy()
    np.testing.assert_allclose(contrib[names].sum(axis=1) + contrib["base_value"], raw, rtol=0, atol=1e-6)
    values = shap.TreeExplainer(pyfunc.booster_).shap_values(pyfunc.feature_matrix(rows))
    values = values[1] if isinstance(values, list) else values
    np.testing.assert_allclose(contrib[names].to_numpy(), values, rtol=0, atol=1e-9)


def test_serving_side_loads_and_predicts_without_training_code(trained, heldout, tmp_path):
    rows = tmp_path / "rows.parquet"
    heldout.head(50).to_parquet(rows)
    code = f"""
import sys
import pandas as pd
from repradar.settings import Settings
from models.loading import load_model, current_version
s = Settings(home={str(trained)!r})
assert current_version(s) == "1", current_version(s)
m = load_model(s)
out = m.pyfunc.predict_frame(pd.read_parquet({str(rows)!r}), explain=True)
assert len(out) == 50 and out["drivers"].map(len).sum() > 0
bad = [n for n in ("training", "shap") if any(k == n or k.startswith(n + ".") for k in sys.modules)]
assert not bad, bad
print("ok", m.version)
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "ok 1" in out.stdout, out.stderr[-3000:]


def test_docs_name_every_artifact_and_version_tag_training_logs(settings):
    """docs/model.md is where a data scientist looks up what a run holds; an artifact or tag left out
    of it is one they do not know to look for."""
    from models import registry

    client = registry.configure(settings)
    mv = client.get_model_version(settings.model_name, "1")
    doc = (Path(__file__).resolve().parents[2] / "docs" / "model.md").read_text()
    logged, folders = [], [""]
    while folders:
        for a in client.list_artifacts(mv.run_id, folders.pop() or None):
            (folders if a.is_dir else logged).append(a.path)
    missing = [a for a in logged if f"`{a}`" not in doc]
    assert not missing, f"run artifacts docs/model.md does not name: {missing}"
    ours = {k for k in mv.tags if not k.startswith("promotion_history.")}  # documented as a pattern
    missing = sorted(k for k in ours if f"`{k}`" not in doc)
    assert not missing, f"version tags docs/model.md does not name: {missing}"
