"""How stage names are read: closed / won by name, and which open stages are *late*.

The feature SQL (`sql/deal_states.sql`) classifies stages with these same words (a test keeps
them equal); this module says, before any feature is built, which stage names those words do
not recognise, since an unrecognised late stage silently counts as early.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

# Open stages whose lower-cased name contains one of these are late (proposal or later).
LATE_STAGE_WORDS = ("propos", "negotiat", "contract", "commit", "quote", "verbal")
# ... except a value proposition: Salesforce's Value Proposition comes before its Id. Decision
# Makers and Perception Analysis stages, so reading it late would make every deal go back from a
# late stage to early ones.
NOT_LATE_PHRASE = "value prop"
# An open stage named this word, alone or last after a space or `-`, is the last open stage
# (Dynamics 365's Close, or numbered `4-Close`): late. A whole word, so `Closed Won`,
# `Closed Lost` and `closed`, closed states read by is_closed / is_won, never match it.
LAST_STAGE_WORD = "close"
# Names that read as closed when no deal in `opportunities` says otherwise.
CLOSED_STAGE_WORDS = ("won", "lost")
CLOSED_STAGE_PREFIX = "closed"
# Names of the open stages before a proposal: not used by the features (every open stage that is
# not late is early), only to tell a known early stage from a name nobody recognised, which the
# warning names. Reviewed against the default stages of the common CRMs and the Maven export
# (`tests/features/test_stages.py` runs each list; docs/import.md has the table):
#   Salesforce (OpportunityStage picklist): Prospecting, Qualification, Needs Analysis,
#     Value Proposition, Id. Decision Makers, Perception Analysis (Proposal/Price Quote and
#     Negotiation/Review read as late; Closed Won/Lost as closed)
#   HubSpot (default sales pipeline, labels and internal ids): Appointment scheduled
#     (appointmentscheduled), Qualified to buy, Presentation scheduled, Decision maker bought-in
#     (Contract sent is late; closedwon, closedlost closed)
#   Pipedrive (default pipeline): Lead In, Qualified, Contact Made, Demo Scheduled
#     (Proposal Made, Negotiations Started late)
#   Dynamics 365 Sales (Opportunity Sales Process): Qualify, Develop (Propose and Close late)
#   Maven CRM export (sales_pipeline.csv deal_stage): Prospecting, Engaging (Won, Lost closed)
# The other words are common custom names of early stages (New, Open, Discovery, Meeting, Intro,
# Interest, Evaluation, Pipeline, Identify Decision Makers): a guess, and a late stage whose name
# holds one of these words is read as early without a warning.
EARLY_STAGE_WORDS = (
    "prospect",  # Salesforce, Maven
    "qualif",  # Salesforce, HubSpot, Pipedrive, Dynamics 365 (Qualify)
    "lead",  # Pipedrive (Lead In)
    "new",
    "open",
    "discover",
    "engag",  # Maven (Engaging)
    "contact",  # Pipedrive (Contact Made)
    "meeting",
    "appointment",  # HubSpot
    "demo",  # Pipedrive (Demo Scheduled)
    "present",  # HubSpot (Presentation scheduled)
    "analysis",  # Salesforce (Needs Analysis, Perception Analysis)
    NOT_LATE_PHRASE,  # Salesforce (Value Proposition)
    "develop",  # Dynamics 365 (Develop)
    "identif",
    "intro",
    "interest",
    "evaluat",
    "pipeline",
)
# Words of stages found on either side of the proposal: Salesforce's "Id. Decision Makers" and
# HubSpot's "Decision maker bought-in" come before it, a custom "Final Decision" often after it.
# Such a stage takes the reading of its neighbours in opportunity_history (`_settled_late`).
AMBIGUOUS_STAGE_WORDS = ("decision",)
LATE_STAGE_FEATURES = (
    "late_stage_reach_rate_180d",
    "late_stage_loss_share_180d",
    "late_stage_progress_rate_180d",
)


def stage_key(name: str) -> str:
    """Stage names are compared without case or outer spaces, as the features compare them."""
    return str(name).strip().lower()


def is_late(name: str) -> bool:
    key = stage_key(name)
    if NOT_LATE_PHRASE in key:
        return False
    w = LAST_STAGE_WORD
    return any(x in key for x in LATE_STAGE_WORDS) or key == w or key.endswith((f" {w}", f"-{w}"))


def closed_by_name(name: str) -> bool:
    key = stage_key(name)
    return any(w in key for w in CLOSED_STAGE_WORDS) or key.startswith(CLOSED_STAGE_PREFIX)


# A stage that deals move on from in more than 1 of 20 of its entries is an open stage, whatever
# its deals' outcomes (sql/deal_states.sql uses the same share).
MAX_CLOSED_STAGE_EXITS = 1 / 20


def _keys(names: pd.Series) -> pd.Series:
    """`stage_key` of every name of a column, computed once per distinct name."""
    names = names.astype(str)
    return names.map({n: stage_key(n) for n in names.unique()})


def _in_order(history: pd.DataFrame, keep=None) -> pd.DataFrame:
    """opportunity_history's deal, time and stage, each deal's rows in the order the features read them
    (by `changed_at`, then file order); `keep(rows)` picks the rows first, to sort only what is needed."""
    h = history[["opportunity_id", "changed_at", "stage"]].dropna(subset=["opportunity_id", "stage"])
    h = h.assign(_row=range(len(h)))
    if keep is not None:
        h = h[keep(h)]
    return h.sort_values(["opportunity_id", "changed_at", "_row"], kind="stable")


# What the stage readings need of the tables, small whatever their size, so that each engine computes
# it where the data is (pandas here, Spark in `features.spark_staging`) and one code reads it:
#   names:   per table, each stage name as written (non-null) -> its row count
#   carried: per stage key in opportunities -> (all its deals closed, all won, any won)
#   steps(unsure): (entries, exits) per stage key, over the history of the deals that ever were in an
#            `unsure` stage: entries are rows not repeating the deal's previous stage name, exits rows
#            whose deal's next row has another name (rows by `changed_at`, nulls last, then file order)
#   moves(): (from key, to key) -> how many times a deal's next history row has another key
StageSteps = Callable[[set[str]], tuple[dict[str, int], dict[str, int]]]
StageMoves = Callable[[], dict[tuple[str, str], int]]


def _carried(opportunities: pd.DataFrame) -> dict[str, tuple[bool, bool, bool]]:
    if not {"stage", "is_closed"} <= set(opportunities):
        return {}
    o = opportunities.dropna(subset=["stage"])
    keys = _keys(o["stage"])
    # without is_won (a partial frame), a deal's outcome is its stage's name
    is_won = o["is_won"] if "is_won" in o else keys.str.contains("won", regex=False)
    f = pd.DataFrame(
        {
            "key": keys,
            "closed": o["is_closed"].fillna(False).astype(bool),
            "won": is_won.fillna(False).astype(bool),
        }
    )
    agg = f.groupby("key").agg(all_closed=("closed", "all"), all_won=("won", "all"), any_won=("won", "any"))
    return {k: (bool(r.all_closed), bool(r.all_won), bool(r.any_won)) for k, r in agg.iterrows()}


def _has_order(history: pd.DataFrame | None) -> bool:
    return history is not None and {"opportunity_id", "changed_at", "stage"} <= set(history)


def _steps(history: pd.DataFrame | None) -> StageSteps:
    def steps(unsure: set[str]) -> tuple[dict[str, int], dict[str, int]]:
        if not _has_order(history):
            return {}, {}
        h = _in_order(
            history,
            lambda h: h["opportunity_id"].isin(h.loc[_keys(h["stage"]).isin(unsure), "opportunity_id"]),
        )
        name, deal = h["stage"].astype(str), h["opportunity_id"]
        same_before = (deal == deal.shift()) & (name == name.shift())
        moves_on = (deal == deal.shift(-1)) & (name != name.shift(-1))
        keys = _keys(name)
        entries = (~same_before).groupby(keys).sum().astype(int).to_dict()
        exits = moves_on.groupby(keys).sum().astype(int).to_dict()
        return entries, exits

    return steps


def _moves(history: pd.DataFrame | None) -> StageMoves:
    def moves() -> dict[tuple[str, str], int]:
        if not _has_order(history):
            return {}
        h = _in_order(history)
        keys = h["stage"].astype(str).str.strip().str.lower()
        prev = keys.shift()
        moved = (h["opportunity_id"] == h["opportunity_id"].shift()) & (keys != prev)
        counts = pd.DataFrame({"src": prev[moved], "dst": keys[moved]}).value_counts()
        return {(src, dst): int(n) for (src, dst), n in counts.items()}

    return moves


def _names(frames: dict[str, pd.DataFrame | None]) -> dict[str, dict[str, int]]:
    return {
        table: {str(k): int(n) for k, n in f["stage"].dropna().astype(str).value_counts(sort=False).items()}
        for table, f in frames.items()
        if f is not None and "stage" in f
    }


def closed_stages(opportunities: pd.DataFrame, history: pd.DataFrame | None) -> tuple[set[str], set[str]]:
    """The stage keys the features read as closed, and the closed ones that read as won, as
    `sql/deal_states.sql` reads them.

    Closed by its name (won, lost, closed...); or carried by deals in `opportunities` that are all
    closed with one outcome, and not moved on from in opportunity_history. Pipedrive and Dynamics
    365 keep a closed deal's last open stage, so a stage open deals still carry, one holding won and
    lost deals, or one deals leave is open. A closed stage holding both outcomes is in neither set
    of won/lost by name: each deal keeps its own outcome.
    """
    names = _names({"opportunities": opportunities, "opportunity_history": history})
    return read_closed_stages(names, _carried(opportunities), _steps(history))


def read_closed_stages(
    names: dict[str, dict[str, int]], carried: dict[str, tuple[bool, bool, bool]], steps: StageSteps
) -> tuple[set[str], set[str]]:
    """`closed_stages` from the aggregates either engine computes (see `StageSteps`)."""
    closed, won = set(), set()
    # closed unless deals move on from it: only these need the history's order (a history runs to
    # millions of rows, and most exports name their closed stages)
    unsure = {
        k for k, (all_closed, all_won, any_won) in carried.items()
        if all_closed and (all_won or not any_won) and not closed_by_name(k)
    }  # fmt: skip
    entries: dict[str, int] = {}
    exits: dict[str, int] = {}
    if unsure:
        entries, exits = steps(unsure)
    for key, (_, all_won, _) in carried.items():
        if closed_by_name(key) or (
            key in unsure and exits.get(key, 0) <= MAX_CLOSED_STAGE_EXITS * entries.get(key, 0)
        ):
            closed.add(key)
            if all_won:
                won.add(key)
    for counts in names.values():
        for key in {stage_key(n) for n in counts}:
            if key not in carried and closed_by_name(key):
                closed.add(key)
                if "won" in key:
                    won.add(key)
    return closed, won


def _word_reading(key: str) -> str | None:
    """How the words of a stage's name read it: late, early, ambiguous (only an
    `AMBIGUOUS_STAGE_WORDS` word) or None (no word reads it)."""
    if is_late(key):
        return "late"
    if any(w in key for w in EARLY_STAGE_WORDS):
        return "early"
    if any(w in key for w in AMBIGUOUS_STAGE_WORDS):
        return "ambiguous"
    return None


def _settled_late(moves: StageMoves, ambiguous: set[str], closed: set[str], won: set[str]) -> set[str]:
    """The stages of `ambiguous` that opportunity_history places after the proposal.

    Each deal's moves from one stage to the next (by `changed_at`, then file order, as the features
    order them) are counted between stages whose name reads early or late, and into won stages
    (lost deals leave any stage). An ambiguous stage is late when the deals entering it come mostly
    from late stages and those leaving it do not go mostly to early ones (won, or none at all: it
    is the last open stage). So Salesforce's "Id. Decision Makers" (after "Value Proposition",
    before "Perception Analysis") and HubSpot's "Decision maker bought-in" (after "Presentation
    scheduled") stay early, and a "Decision" between "Proposal" and the close is late.
    """
    if not ambiguous:
        return set()
    counted = moves()
    reading = {
        k: ("won" if k in won else "closed" if k in closed else _word_reading(k))
        for k in {src for src, _ in counted} | {dst for _, dst in counted}
    }
    late = set()
    for key in ambiguous:
        into = {"early": 0, "late": 0}
        out = {"early": 0, "late": 0, "won": 0}
        for (src, dst), n in counted.items():
            if dst == key and reading[src] in into:
                into[reading[src]] += int(n)
            if src == key and reading[dst] in out:
                out[reading[dst]] += int(n)
        if into["late"] > into["early"] and out["early"] <= out["late"] + out["won"]:
            late.add(key)
    return late


def unrecognised_stages(
    opportunities: pd.DataFrame, history: pd.DataFrame | None
) -> tuple[dict[str, dict[str, int]], bool]:
    """Open stage names that are neither late nor a known early name, per table, with their row
    counts (names as first written; counts over every spelling of one name), and whether any
    stage at all is late.

    A stage is closed as the features read it (`closed_stages`); closed stages need no late/early
    reading. A stage named only by an ambiguous word (`decision`) is early unless opportunity_history places it after the proposal
    (`_settled_late`): then it is a late stage the features read as early, and is named too.
    """
    names = _names({"opportunities": opportunities, "opportunity_history": history})
    return read_unrecognised_stages(names, _carried(opportunities), _steps(history), _moves(history))


def read_unrecognised_stages(
    names: dict[str, dict[str, int]],
    carried: dict[str, tuple[bool, bool, bool]],
    steps: StageSteps,
    moves: StageMoves,
) -> tuple[dict[str, dict[str, int]], bool]:
    """`unrecognised_stages` from the aggregates either engine computes (see `StageSteps`)."""
    closed, won = read_closed_stages(names, carried, steps)
    out: dict[str, dict[str, int]] = {}
    any_late = False
    per_table: dict[str, tuple[dict[str, int], dict[str, str]]] = {}
    for table, per_name in names.items():
        # By distinct name, not by row: history tables run to millions of rows.
        counts: dict[str, int] = {}
        first: dict[str, str] = {}
        for name, n in per_name.items():
            if not name.strip():
                continue
            key = stage_key(name)
            counts[key] = counts.get(key, 0) + int(n)
            first.setdefault(key, name)
        per_table[table] = counts, first
    ambiguous = {
        k
        for counts, _ in per_table.values()
        for k in counts
        if k not in closed and _word_reading(k) == "ambiguous"
    }
    settled_late = _settled_late(moves, ambiguous, closed, won)
    for table, (counts, first) in per_table.items():
        found: dict[str, int] = {}
        for key, n in counts.items():
            if key in closed:
                continue
            reading = _word_reading(key)
            if reading == "late":
                any_late = True
            elif reading is None or key in settled_late:
                found[first[key]] = int(n)
        if found:
            out[table] = dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))
    return out, any_late


UNRECOGNISED_STAGES = "stage names not recognised as early or late stages"


def unrecognised_stages_warning(
    found: dict[str, dict[str, int]], any_late: bool, sources: dict[str, tuple[str, str]] | None = None
) -> str | None:
    """The warning for `unrecognised_stages`: where, which names and how many rows, what it costs,
    and how to name them so the features read them.

    `sources` (the importer's): per table, the source file and column its stage came from, so the
    warning also says where to look in the export and which column the value map reads.
    """
    if not found:
        return None
    sources = sources or {}
    parts = []
    for table, names in found.items():
        listed = ", ".join(f"{n!r} ({c} row{'s' if c != 1 else ''})" for n, c in list(names.items())[:10])
        more = f" and {len(names) - 10} more" if len(names) > 10 else ""
        where = f" (from {sources[table][0]} column {sources[table][1]})" if table in sources else ""
        parts.append(f"{table}.stage{where}: {listed}{more}")
    first_table = next(iter(found))
    example = next(iter(found[first_table]))
    column = sources[first_table][1] if first_table in sources else "STAGE_COLUMN"
    if any_late:
        cost = (
            "these are read as early stages (before proposal), so a deal in them never counts as having "
            f"reached a late stage in {', '.join(LATE_STAGE_FEATURES)}"
        )
    else:
        cost = (
            f"no stage in the data is one, so {', '.join(LATE_STAGE_FEATURES)} take it that no deal "
            "ever reached a late stage (0)"
        )
    return (
        f"{UNRECOGNISED_STAGES}: "
        + "; ".join(parts)
        + f". Late stages are recognised by English words in the name ({', '.join(LATE_STAGE_WORDS)}); "
        + cost
        + ". Give each such stage an English name in both tables: late ones e.g. Negotiation or Proposal, "
        "early ones e.g. Qualification (in an import mapping, a value map on `stage` in opportunities "
        f"and opportunity_history: `stage: {{from: {column}, values: {{{example!r}: Negotiation}}, "
        "unmapped: keep}`; see docs/import.md)"
    )


def unrecognised_stages_record(
    found: dict[str, dict[str, int]], any_late: bool, sources: dict[str, tuple[str, str]] | None = None
) -> dict | None:
    """`unrecognised_stages` as data (for the import's `_import.json`): per table, the column, the
    source file and column it came from (`sources`, as for the warning) and every name with its row
    count; whether any stage is late, and the features that misread the names."""
    if not found:
        return None
    sources = sources or {}
    tables = []
    for table, names in found.items():
        entry: dict = {"table": table, "column": "stage"}
        if table in sources:
            entry["source_file"], entry["source_column"] = sources[table]
        entry["names"] = [{"name": n, "rows": c} for n, c in names.items()]
        tables.append(entry)
    return {
        "kind": "unrecognised_stage_names",
        "tables": tables,
        "late_stage_in_data": any_late,
        "features": list(LATE_STAGE_FEATURES),
    }
