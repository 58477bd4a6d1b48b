"""serving.store against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert

from serving import store
from serving.db.schema import InterventionLog
from serving.rules import Scope

from .conftest import SUBTREE, assert_read_in_chunks, log_entries, parameter_limit


def _table(entries) -> list[tuple]:
    return [(e.rep_id, e.intervention, e.started_on, e.ended_on) for e in entries]


def test_the_intervention_table_is_read_from_the_cursor_a_chunk_at_a_time(service, db_url):
    """An export's rows come in lists of at most `chunk`, read as they are asked for (on PostgreSQL from a
    server-side cursor, which pg_cursors lists while the chunks are read), the same rows in the same order
    as the paged reads; entries recorded after the count are not among them."""
    with service.app.state.sessions.begin() as s:
        s.execute(insert(InterventionLog), log_entries(2500))
    everything, under_m1 = (
        store.EntryFilter(),
        store.EntryFilter(scope=Scope(False, frozenset(SUBTREE["M1"]))),
    )
    ranged = store.EntryFilter(started_from=dt.date(2024, 3, 1), started_to=dt.date(2024, 6, 30), team="T2")
    with service.session() as s:
        total, last = store.count_intervention_entries(s, everything)
        expected = _table(store.intervention_entries(s, everything)[0])
        assert total == len(expected) == 2500
        with service.app.state.sessions.begin() as other:  # recorded after the count: not sent
            other.execute(insert(InterventionLog), log_entries(3))
        assert_read_in_chunks(
            s,
            store.iter_intervention_table(s, everything, last, chunk=1000),
            expected,
            db_url,
            [1000, 1000, 500],
        )
        for f in (under_m1, ranged):
            total, last = store.count_intervention_entries(s, f)
            rows = [tuple(r) for c in store.iter_intervention_table(s, f, last, chunk=300) for r in c]
            expected = _table(store.intervention_entries(s, f)[0])
            assert 0 < total == len(rows) < 2500 and rows == expected
        # nothing can match: no query at all, no chunk
        nobody = store.EntryFilter(scope=Scope(False, frozenset()))
        assert store.count_intervention_entries(s, nobody) == (0, None)
        assert list(store.iter_intervention_table(s, nobody, None)) == []


def test_a_scope_of_more_reps_than_the_database_takes_parameters_still_filters(service, db_url):
    """A manager's subtree larger than the database's limit of bound parameters narrows the export and the
    early-warning rows exactly as a small one does."""
    limit = parameter_limit(service, db_url)
    with service.app.state.sessions.begin() as s:
        s.execute(insert(InterventionLog), log_entries(60))
    small = Scope(False, frozenset(SUBTREE["M1"]))
    large = Scope(False, small.reps | {f"T{i:06d}" for i in range(limit + 1)})  # reps with nothing stored
    with service.session() as s:
        for f in (store.EntryFilter(scope=small), store.EntryFilter(scope=small, rep_ids=small.reps)):
            big = store.EntryFilter(scope=large, rep_ids=large.reps if f.rep_ids else None)
            expected = _table(store.intervention_entries(s, f)[0])
            assert 0 < len(expected) < 60
            assert _table(store.intervention_entries(s, big)[0]) == expected
            assert store.count_intervention_entries(s, big)[0] == len(expected)
            last = store.count_intervention_entries(s, big)[1]
            assert [tuple(r) for c in store.iter_intervention_table(s, big, last) for r in c] == expected
        assert store.current_rows(s, large) == store.current_rows(s, small) != []


def test_a_track_record_is_replaced_by_one_judged_later_never_by_one_judged_earlier(service, db_url):
    """A batch job run again for an old day knows fewer outcomes than one that judged the list since:
    its figures do not overwrite those. The same day again, or a later one, replaces them."""
    from serving.db.schema import TrackRecord

    from .conftest import succeeded_job

    succeeded_job(service.app, "j1", dt.date(2024, 1, 22))

    def save(day, n):
        with service.app.state.sessions.begin() as s:
            store.save_track_records(
                s, {"j1": {"n_known": n, "auc": float("nan")}}, judged_by=f"by-{n}", judged_as_of=day
            )
        with service.session() as s:
            rec = s.get(TrackRecord, "j1")
            return rec.judged_by, rec.judged_as_of, rec.figures

    assert save(dt.date(2024, 5, 1), 40) == ("by-40", dt.date(2024, 5, 1), {"n_known": 40, "auc": None})
    assert save(dt.date(2024, 4, 2), 30)[0] == "by-40"  # judged earlier: kept out
    assert save(dt.date(2024, 5, 1), 41)[0] == "by-41"  # the same day again: replaced
    assert save(dt.date(2024, 7, 1), 45) == ("by-45", dt.date(2024, 7, 1), {"n_known": 45, "auc": None})
    with service.session() as s:
        assert [j.id for _, j in store.track_records(s)] == ["j1"]


def test_period_outcomes_are_replaced_by_later_knowledge_never_by_earlier(service, db_url):
    """A rep's period outcome as a later job's data know it replaces one known earlier (a late-booked
    deal), never the reverse; pandas values (NaN, numpy bools, timestamps) are stored as plain ones, and
    more rows than the database takes parameters in one statement are stored in chunks."""
    import numpy as np
    import pandas as pd

    from serving.db.schema import PeriodOutcome

    q1 = (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-31"))

    def save(day, attainment, missed, by):
        row = {"rep_id": "R1", "period_start": q1[0], "period_end": q1[1], "attainment": attainment}
        with service.app.state.sessions.begin() as s:
            store.save_outcomes(s, [{**row, "missed": np.bool_(missed)}], judged_by=by, known_on=day)
        with service.session() as s:
            o = store.rep_outcomes(s, "R1")[dt.date(2024, 1, 1)]
            return o.attainment, o.missed, o.known_on, o.judged_by, o.period_end

    got = save(dt.date(2024, 4, 8), 0.97, True, "j1")
    assert got == (0.97, True, dt.date(2024, 4, 8), "j1", dt.date(2024, 3, 31))
    assert save(dt.date(2024, 4, 1), 0.5, True, "j0")[3] == "j1"  # known earlier: kept out
    assert save(dt.date(2024, 5, 6), 1.02, False, "j2")[:3] == (1.02, False, dt.date(2024, 5, 6))
    assert save(dt.date(2024, 5, 6), float("nan"), True, "j3")[0] is None
    many = [
        {
            "rep_id": f"X{i:05d}",
            "period_start": q1[0],
            "period_end": q1[1],
            "attainment": 1.0,
            "missed": False,
        }
        for i in range(parameter_limit(service, db_url) // 7 + 10)
    ]
    with service.app.state.sessions.begin() as s:
        assert store.save_outcomes(s, many, judged_by="j4", known_on=dt.date(2024, 6, 3)) == len(many)
        assert store.save_outcomes(s, [], judged_by="j4", known_on=dt.date(2024, 6, 3)) == 0
    with service.session() as s:
        assert s.query(PeriodOutcome).count() == len(many) + 1
        assert store.rep_outcomes(s, "nobody") == {}
