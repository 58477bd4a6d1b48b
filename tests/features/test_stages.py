"""Stage names: the late-stage words match the feature SQL, and names they cannot read are named."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from features.stages import (
    LAST_STAGE_WORD,
    LATE_STAGE_WORDS,
    NOT_LATE_PHRASE,
    closed_stages,
    is_late,
    unrecognised_stages,
    unrecognised_stages_record,
    unrecognised_stages_warning,
)
from features.validation import validate_folder

SQL = Path(__file__).resolve().parents[2] / "features" / "sql" / "deal_states.sql"
VALID = Path(__file__).resolve().parents[1] / "fixtures" / "contract" / "valid"


def test_the_late_words_are_the_ones_the_features_use():
    sql = SQL.read_text()
    case = re.search(
        rf"CASE WHEN sn\.stage_key LIKE '%{NOT_LATE_PHRASE}%' THEN 0\s+WHEN sn\.stage_key LIKE '%propos%'.*?END AS is_late",
        sql,
        re.S,
    )
    assert case is not None
    assert tuple(re.findall(r"LIKE '%(\w+)%'", case.group(0))) == LATE_STAGE_WORDS
    w = LAST_STAGE_WORD
    rule = f"sn.stage_key = '{w}' OR sn.stage_key LIKE '% {w}' OR sn.stage_key LIKE '%-{w}'"
    assert rule in case.group(0)


def opps(*rows):
    return pd.DataFrame(rows, columns=["stage", "is_closed"])


def test_unrecognised_open_stages_are_counted_per_table():
    o = opps(("Verhandlung", False), ("verhandlung ", False), ("Gewonnen", True), ("Bedarfsanalyse", False))
    h = pd.DataFrame({"stage": ["Erstkontakt", "Verhandlung", "Gewonnen", "Verloren", None]})
    found, any_late = unrecognised_stages(o, h)
    assert any_late is False
    # "Gewonnen" is closed by the deals; "Verloren" only by its English-less name: it stays open.
    assert found == {
        "opportunities": {"Verhandlung": 2, "Bedarfsanalyse": 1},
        "opportunity_history": {"Erstkontakt": 1, "Verhandlung": 1, "Verloren": 1},
    }
    text = unrecognised_stages_warning(found, any_late)
    assert "opportunities.stage: 'Verhandlung' (2 rows), 'Bedarfsanalyse' (1 row)" in text
    assert "opportunity_history.stage: 'Erstkontakt' (1 row)" in text
    assert "late_stage_reach_rate_180d" in text and "no deal ever reached a late stage (0)" in text
    assert "`stage: {from: STAGE_COLUMN, values: {'Verhandlung': Negotiation}, unmapped: keep}`" in text
    # As data (the import's record): every name with its rows, per table, not only the first ten.
    record = unrecognised_stages_record(found, any_late)
    assert record["tables"][1] == {
        "table": "opportunity_history",
        "column": "stage",
        "names": [
            {"name": "Erstkontakt", "rows": 1},
            {"name": "Verhandlung", "rows": 1},
            {"name": "Verloren", "rows": 1},
        ],
    }
    assert record["late_stage_in_data"] is False and unrecognised_stages_record({}, True) is None


# The default open and closed stages of common CRMs and of the Maven export: none is unrecognised.
CRM_DEFAULT_STAGES = {
    "salesforce": [
        "Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
        "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost",
    ],
    "hubspot labels": [
        "Appointment scheduled", "Qualified to buy", "Presentation scheduled", "Decision maker bought-in",
        "Contract sent", "Closed won", "Closed lost",
    ],
    "hubspot ids": [
        "appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
        "contractsent", "closedwon", "closedlost",
    ],
    "pipedrive": ["Lead In", "Qualified", "Contact Made", "Demo Scheduled", "Proposal Made", "Negotiations Started"],
    "dynamics 365": ["Qualify", "Develop", "Propose", "Close"],
    "dynamics 365 numbered": ["1-Qualify", "2-Develop", "3-Propose", "4-Close"],
    "maven crm": ["Prospecting", "Engaging", "Won", "Lost"],
}  # fmt: skip


def walk(*deals: list[str]) -> pd.DataFrame:
    """opportunity_history of deals that each go through their stages in the order given, a day apart."""
    rows = [
        (f"o{i}", pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=d), name)
        for i, names in enumerate(deals)
        for d, name in enumerate(names)
    ]
    return pd.DataFrame(rows, columns=["opportunity_id", "changed_at", "stage"])


@pytest.mark.parametrize("crm", sorted(CRM_DEFAULT_STAGES))
def test_the_default_stage_names_of_common_crms_are_recognised(crm):
    names = CRM_DEFAULT_STAGES[crm]
    closed = [n.lower() in ("won", "lost") for n in names]
    found, _ = unrecognised_stages(opps(*zip(names, closed, strict=True)), None)
    assert found == {}
    # With a history in which a deal goes through them in the CRM's order, the decision stages
    # (Salesforce's Id. Decision Makers after Value Proposition, HubSpot's before Contract sent) stay early.
    found, _ = unrecognised_stages(opps(*zip(names, closed, strict=True)), walk(names))
    assert found == {}


def test_a_decision_stage_after_the_proposal_is_named_as_a_late_stage_read_as_early():
    # "decision" names stages on either side of the proposal; the history's order settles which.
    after = ["Qualification", "Proposal", "Final Decision", "Closed Won"]
    o = opps(("Final Decision", False), ("Proposal", False), ("Closed Won", True))
    found, any_late = unrecognised_stages(o, walk(after, after[:3], ["Qualification", "Proposal"]))
    assert found == {"opportunities": {"Final Decision": 1}, "opportunity_history": {"Final Decision": 2}}
    assert any_late
    # Before the proposal it is an early stage, as it is with no history to tell.
    before = ["Qualification", "Decision", "Proposal", "Closed Won"]
    assert unrecognised_stages(opps(("Decision", False)), walk(before))[0] == {}
    assert unrecognised_stages(o, None)[0] == {}
    # One deal sent back from it to qualification does not outweigh the others.
    back = ["Proposal", "Final Decision", "Qualification"]
    found, _ = unrecognised_stages(o, walk(after, after, back))
    assert found["opportunity_history"] == {"Final Decision": 3}


def test_close_is_the_last_open_stage_and_closed_is_not():
    # Dynamics 365's last open stage is "Close" ("4-Close" numbered): late, as the
    # features read it. "Closed Won", "Closed Lost", "closed" are closed states, never late stages.
    assert all(is_late(n) for n in ["Close", " close ", "4-Close", "4 - Close", "Ready to close"])
    assert not any(is_late(n) for n in ["Closed Won", "Closed Lost", "closed", "Closed", "Enclose", "Closer"])
    found, any_late = unrecognised_stages(opps(("Develop", False), ("Close", False)), None)
    assert found == {} and any_late
    # A history-only closed state stays closed by its name; an open "Closing" is not "Close".
    h = pd.DataFrame({"stage": ["Close", "closed", "Closed Won", "Closing"]})
    found, _ = unrecognised_stages(opps(("Develop", False)), h)
    assert found == {"opportunity_history": {"Closing": 1}}


def won_lost(*rows):
    return pd.DataFrame(rows, columns=["stage", "is_closed", "is_won"])


def test_a_stage_closed_deals_kept_is_open_as_the_features_read_it():
    # Pipedrive and Dynamics 365 keep a closed deal's last open stage (won / lost is a status).
    o = won_lost(
        ("Negotiations Started", True, True),
        ("Negotiations Started", True, False),  # won and lost deals kept it: open
        ("Close", True, True),
        ("Close", False, False),  # an open deal still carries it: open
        ("Signed", True, True),  # a custom closed stage: all won, no deal moves on
        ("Gone Cold", True, False),  # all lost, but deals move on from it: open
        ("Closed Won", True, True),
        ("Closed", True, True),
        ("Closed", True, False),  # closed by name, both outcomes: each deal its own
    )
    h = walk(["Qualified", "Gone Cold", "Negotiations Started"], ["Gone Cold"], ["Proposal", "Signed"])
    closed, won = closed_stages(o, h)
    assert closed == {"signed", "closed won", "closed"}
    assert won == {"signed", "closed won"}
    found, any_late = unrecognised_stages(o, h)
    # Close and Negotiations Started are open late stages; Gone Cold is open and no word reads it
    assert any_late and found == {
        "opportunities": {"Gone Cold": 1},
        "opportunity_history": {"Gone Cold": 2},
    }
    # Without history, a stage its deals all closed with one outcome is closed.
    assert closed_stages(o, None)[0] == {"signed", "gone cold", "closed won", "closed"}


def test_a_value_proposition_is_early_and_a_proposal_late():
    assert not is_late("Value Proposition") and not is_late("value proposition ")
    assert all(is_late(n) for n in ["Proposal/Price Quote", "Proposal Made", "Propose"])
    found, any_late = unrecognised_stages(opps(("Value Proposition", False)), None)
    assert found == {} and not any_late  # a known early stage, not an unrecognised one


def test_a_late_stage_not_named_as_one_is_still_named():
    found, any_late = unrecognised_stages(opps(("Develop", False), ("Stufe 4", False)), None)
    assert found == {"opportunities": {"Stufe 4": 1}} and not any_late


def test_one_unknown_stage_among_english_ones_counts_as_early():
    found, any_late = unrecognised_stages(opps(("Proposal", False), ("Stage 4", False)), None)
    assert found == {"opportunities": {"Stage 4": 1}} and any_late
    assert "read as early stages" in unrecognised_stages_warning(found, any_late)


def rename_stages(folder: Path, names: dict[str, str]) -> None:
    for table in ("opportunities", "opportunity_history"):
        path = folder / f"{table}.csv"
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        df["stage"] = df["stage"].replace(names)
        df.to_csv(path, index=False)


def test_validate_warns_about_stage_names_in_another_language(tmp_path):
    folder = tmp_path / "org"
    shutil.copytree(VALID, folder)
    assert not [w for w in validate_folder(folder).warnings if "stage names" in w]
    rename_stages(
        folder, {"Negotiation": "Verhandlung", "Proposal": "Angebot", "Qualification": "Bedarfsanalyse"}
    )
    report = validate_folder(folder)
    assert report.ok  # a warning: the data is valid, the features read it poorly
    (warning,) = [w for w in report.warnings if "stage names" in w]
    assert (
        "opportunities.stage: 'Angebot' (1 row), 'Bedarfsanalyse' (1 row), 'Verhandlung' (1 row)" in warning
    )
    assert "opportunity_history.stage:" in warning and "'Verhandlung' (1 row)" in warning


def test_without_history_there_is_nothing_to_warn_about(tmp_path):
    folder = tmp_path / "org"
    shutil.copytree(VALID, folder)
    rename_stages(folder, {"Negotiation": "Verhandlung", "Proposal": "Angebot"})
    (folder / "opportunity_history.csv").unlink()
    assert not [w for w in validate_folder(folder).warnings if "stage names" in w]
