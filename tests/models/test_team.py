"""Team view: manager-level suggestions from a scores frame."""

import pandas as pd

from models.team import COLUMNS, team_suggestions, top_group


def _scores():
    rows = []
    day = pd.Timestamp("2024-04-22")
    # m1: 3 reps at risk for the pipeline (shared driver); m2: 4 of 5 in the high band (far above the org)
    for i in range(3):
        rows.append(("m1", f"a{i}", "high", "pipeline"))
    rows.append(("m1", "a3", "low", "activity"))
    for i in range(4):
        rows.append(("m2", f"b{i}", "high", ["conversion", "activity", "customer", "cycle"][i]))
    rows.append(("m2", "b4", "medium", "pipeline"))
    for i in range(30):
        rows.append((f"m{3 + i // 6}", f"c{i}", "low", "pipeline"))
    return pd.DataFrame(
        {
            "manager_id": [r[0] for r in rows],
            "rep_id": [r[1] for r in rows],
            "as_of": day,
            "risk_band": [r[2] for r in rows],
            "driver_groups": [
                [{"group": "tenure", "actionable": False}, {"group": r[3], "actionable": True}] for r in rows
            ],
        }
    )


def test_shared_driver_and_team_far_above_the_org():
    out = team_suggestions(_scores(), k=3)
    assert list(out.columns) == COLUMNS
    tb = out[out["suggestion"] == "team_building"]
    assert tb["manager_id"].tolist() == ["m1"] and tb["group"].tolist() == ["pipeline"]
    assert tb["rep_ids"].iloc[0] == ["a0", "a1", "a2"]
    assert "3 of 4 reps" in tb["reason_en"].iloc[0] and "销售管道" in tb["reason_zh"].iloc[0]
    mc = out[out["suggestion"] == "manager_coaching"]
    assert set(mc["manager_id"]) == {"m1", "m2"}
    r = mc[mc["manager_id"] == "m2"].iloc[0]
    assert r["team_high_rate"] == 0.8 and r["team_high_rate"] >= 2 * r["org_high_rate"]
    assert "80%" in r["reason_en"] and "80%" in r["reason_zh"]


def test_context_groups_never_count_and_an_empty_frame_is_fine():
    assert (
        top_group(
            {
                "driver_groups": [
                    {"group": "tenure", "actionable": False},
                    {"group": "quota", "actionable": True},
                ]
            }
        )
        == "quota"
    )
    assert top_group({"drivers": [{"group": "calendar"}, {"group": "activity"}]}) == "activity"
    assert top_group({"driver_groups": [{"group": "tenure", "actionable": False}]}) is None
    assert team_suggestions(pd.DataFrame()).empty
    quiet = _scores().assign(risk_band="low")
    assert team_suggestions(quiet).empty
