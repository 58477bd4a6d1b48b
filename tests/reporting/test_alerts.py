"""Manager digests: who is newly in the high band, the dry run, a webhook to a local receiver and
e-mail through a local SMTP server (aiosmtpd). Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from reporting.alerts import build_digests, email_message, newly_high, send_alerts
from reporting.settings import AlertSettings
from repradar.errors import UserError
from tests.reporting.conftest import run_cli, small_scores

_scores = small_scores


MANAGERS = {"a": "m1", "b": "m1", "c": "m1", "d": "m2", "e": "m2", "f": "m3"}


@pytest.fixture
def batches():
    prev = _scores(
        {"a": "high", "b": "medium", "c": "low", "d": "low", "e": "low", "f": "high"}, MANAGERS, "2024-05-06"
    )
    now = _scores({"a": "high", "b": "high", "c": "high", "d": "medium", "e": "high", "f": "high"}, MANAGERS)
    return prev, now


def test_newly_high_compares_with_the_previous_batch(batches):
    prev, now = batches
    new = newly_high(now, prev)
    assert sorted(new["rep_id"]) == ["b", "c", "e"]  # a and f were already high
    assert dict(zip(new["rep_id"], new["previous_band"], strict=True)) == {
        "b": "medium",
        "c": "low",
        "e": "low",
    }
    assert sorted(newly_high(now, None)["rep_id"]) == ["a", "b", "c", "e", "f"]


def test_one_digest_per_manager_with_new_high_band_reps(batches):
    prev, now = batches
    ds = build_digests(now, prev, names={"b": "Bea"}, max_reps=1)
    assert [d.manager_id for d in ds] == ["m1", "m2"]  # m3's only rep was already high
    m1 = ds[0]
    assert len(m1.reps) == 1 and m1.more == 1 and m1.high_total == 3 and m1.team_size == 3
    j = m1.to_json()
    assert j["new_high_band"] == 2
    # no sentence in the scores: the feature's label and value, not its column name
    assert j["reps"][0]["drivers"] == ["Coverage of the remaining quota by open pipeline: 0.40x"]
    assert j["reps"][0]["drivers_zh"][0].startswith("在途商机对剩余指标的覆盖倍数")
    assert "Bea" in m1.text() or "c" in m1.text()
    assert not m1.first_batch and build_digests(now, None)[0].first_batch


def test_dry_run_writes_json_and_text_per_manager(batches, tmp_path):
    prev, now = batches
    r = send_alerts(now, previous=prev, dry_run_dir=tmp_path / "digests")
    names = sorted(p.name for p in r.written)
    assert names == ["digest_m1.json", "digest_m1.txt", "digest_m2.json", "digest_m2.txt"]
    body = json.loads((tmp_path / "digests" / "digest_m2.json").read_text())
    assert body["manager_id"] == "m2" and [x["rep_id"] for x in body["reps"]] == ["e"]
    assert (tmp_path / "digests" / "digest_m1.txt").read_text().startswith("Subject: RepRadar: 2 rep(s)")


def test_no_channel_configured_is_a_user_error(batches):
    prev, now = batches
    with pytest.raises(UserError, match="REPRADAR_ALERTS_WEBHOOK_URL"):
        send_alerts(now, previous=prev, alert_settings=AlertSettings())


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_posts_each_digest_as_json_to_a_local_receiver(batches):
    prev, now = batches
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks/repradar"
        a = AlertSettings(webhook_url=url, webhook_token="s3cret", webhook_timeout_s=5)
        r = send_alerts(now, previous=prev, alert_settings=a)
    finally:
        server.shutdown()
        server.server_close()
    assert r.errors == [] and r.sent_webhook == ["m1", "m2"]
    got = {body["manager_id"]: (path, headers, body) for path, headers, body in _Receiver.received}
    path, headers, body = got["m1"]
    assert path == "/hooks/repradar" and headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == "Bearer s3cret"
    assert (
        body["type"] == "repradar.high_band_digest"
        and body["as_of"] == "2024-05-13"
        and body["model_version"] == "3"
    )
    assert [x["rep_id"] for x in body["reps"]] == ["c", "b"]  # riskiest first
    assert body["reps"][0]["previous_band"] == "low" and body["reps"][0]["interventions"] == [
        "pipeline_generation"
    ]
    assert got["m2"][2]["new_high_band"] == 1


def test_webhook_failure_is_reported_not_raised(batches):
    prev, now = batches
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    port = server.server_address[1]
    server.server_close()  # nobody listens there any more
    r = send_alerts(
        now,
        previous=prev,
        alert_settings=AlertSettings(webhook_url=f"http://127.0.0.1:{port}/x", webhook_timeout_s=2),
    )
    assert r.sent_webhook == [] and len(r.errors) == 2


def test_email_goes_through_a_local_smtp_server(batches, tmp_path):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    inbox = []

    class Keep(Message):
        def handle_message(self, message):
            inbox.append(message)

    import socket

    with socket.socket() as s:  # a free port on the loopback interface
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        book = tmp_path / "managers.csv"
        book.write_text("manager_id,email\nm1,ann@example.com\n")
        a = AlertSettings(
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_from="repradar@example.com",
            email_map=book,
        )
        prev, now = batches
        r = send_alerts(now, previous=prev, alert_settings=a)
    finally:
        controller.stop()
    assert r.sent_email == ["m1"]
    assert r.skipped == ["no e-mail address for manager m2"]
    # m2's digest reached nobody: an error (exit 1, the batch not remembered), else next run m2's reps
    # would no longer be new and m2 would never hear of them
    assert r.errors == [
        "manager m2: the digest reached no one (no e-mail address, no webhook); add m2 to "
        "REPRADAR_ALERTS_EMAIL_MAP or set REPRADAR_ALERTS_EMAIL_DEFAULT, then run again"
    ], r.errors
    assert len(inbox) == 1
    msg = inbox[0]
    assert msg["To"] == "ann@example.com" and msg["From"] == "repradar@example.com"
    assert msg["Subject"].startswith("RepRadar: 2 rep(s) newly at high risk")
    parts = {p.get_content_type(): p for p in email.message_from_string(msg.as_string()).walk()}
    text = parts["text/plain"].get_payload(decode=True).decode()
    assert "- c:" in text and "previously low" in text and "Coverage of the remaining quota" in text
    body = json.loads(parts["application/json"].get_payload(decode=True))
    assert body["manager_id"] == "m1"


def test_digests_use_the_scores_sentences_and_say_who_was_not_in_the_previous_batch(batches):
    prev, now = batches
    now = now.copy()
    sentence = "Coverage of the remaining quota by open pipeline is 0.4x, against 2.1x for SMB peers"
    now["drivers"] = [
        [
            {
                "feature": "pipeline_coverage",
                "value": 0.4,
                "contribution": 0.9,
                "text_en": "feature sentence",
            },
            {"feature": "win_rate_180d", "value": 0.1, "contribution": 0.2, "text_en": "second feature"},
        ]
    ] * len(now)
    groups = [{"group": "pipeline", "feature": "pipeline_coverage", "text_en": sentence, "text_zh": "句子"}]
    now["driver_groups"] = [groups if r == "b" else [] for r in now["rep_id"]]
    prev = prev[prev["rep_id"] != "c"]  # c was not scored in the previous batch
    m1 = build_digests(now, prev)[0]
    by_rep = {r["rep_id"]: r for r in m1.reps}
    assert by_rep["b"]["drivers"] == [sentence] and by_rep["b"]["drivers_zh"] == ["句子"]
    assert by_rep["c"]["drivers"] == ["feature sentence", "second feature"]  # no group sentence: drivers'
    text = m1.text()
    assert sentence in text and "pipeline_coverage" not in text
    assert "- c: risk" in text and "not in the previous batch" in text
    assert "not scored before" not in text and "previously not" not in text
    assert "not in the previous batch" not in build_digests(now, None)[0].text()  # first batch: said once


def test_a_previous_batch_without_a_rep_in_common_is_refused(batches, tmp_path):
    _, now = batches
    other = _scores({"x1": "high", "x2": "low"}, {"x1": "z", "x2": "z"}, "2024-05-06")
    with pytest.raises(UserError, match="shares no rep with this batch"):
        send_alerts(now, previous=other, dry_run_dir=tmp_path / "d")
    assert not (tmp_path / "d").exists()  # refused: nothing written
    send_alerts(now, previous=pd.concat([other, now.head(1)]), dry_run_dir=tmp_path / "d")  # one in common
    from reporting.alerts import check_previous

    few = check_previous(now, pd.concat([other, now.head(1)]), source="--previous p.parquet")
    assert few.startswith("note: --previous p.parquet holds only 1 of this batch's")
    assert check_previous(now, now) is None  # the same reps: nothing to say


def test_alerts_command_refuses_another_organisations_previous_batch(batches, tmp_path):
    from models.scoring import write_scores

    _, now = batches
    other = _scores({"x1": "high", "x2": "low"}, {"x1": "z", "x2": "z"}, "2024-05-06")
    n, p = write_scores(now, tmp_path / "now.parquet"), write_scores(other, tmp_path / "other.parquet")
    r = run_cli(
        tmp_path,
        "alerts",
        "--scores",
        str(n),
        "--previous",
        str(p),
        "--dry-run",
        "--out",
        str(tmp_path / "d"),
    )
    assert r.exit_code == 2, r.stdout + r.stderr
    assert "--previous" in r.stderr and "shares no rep" in r.stderr and "internal error" not in r.stderr
    assert not (tmp_path / "d").exists()


def test_dry_run_without_digests_still_creates_the_folder(batches, tmp_path):
    from models.scoring import write_scores

    _, now = batches
    n = write_scores(now, tmp_path / "now.parquet")  # compared with itself: nobody is newly high
    r = run_cli(
        tmp_path,
        "alerts",
        "--scores",
        str(n),
        "--previous",
        str(n),
        "--dry-run",
        "--out",
        str(tmp_path / "d"),
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    assert (tmp_path / "d").is_dir() and list((tmp_path / "d").iterdir()) == []
    assert "0 digests" in r.stdout


def test_a_batch_mixing_model_versions_or_repeating_reps_is_refused_before_anything_is_sent(
    batches, tmp_path
):
    from models.scoring import write_scores

    prev, now = batches
    mixed = pd.concat([now, now.assign(model_version="2")])  # two batches concatenated
    with pytest.raises(UserError, match=r"mixes model versions \(version 2: 6 row\(s\); version 3: 6 row"):
        send_alerts(mixed, previous=prev, dry_run_dir=tmp_path / "d0")
    twice = pd.concat([now, now.assign(as_of=pd.Timestamp("2024-05-20"))])  # one version, two days
    with pytest.raises(UserError, match=r"holds 6 rep\(s\) more than once over 2 as-of days"):
        send_alerts(twice, previous=prev, dry_run_dir=tmp_path / "d0")
    assert not (tmp_path / "d0").exists()
    m = write_scores(mixed, tmp_path / "mix.parquet")
    r = run_cli(tmp_path, "alerts", "--scores", str(m), "--dry-run", "--out", str(tmp_path / "d"))
    assert r.exit_code == 2, r.stdout + r.stderr
    assert "mixes model versions" in r.stderr and "--scores" in r.stderr and "digest" not in r.stdout
    assert not (tmp_path / "d").exists()


def test_a_data_folder_lacking_the_scored_reps_is_refused_as_the_report_refuses_it(tmp_path):
    # --data gives the digests the reps' names: another organisation's (or export's) folder sent every
    # digest without them, without a word. Refused with the reps it lacks (exit 2), nothing written.
    from models.scoring import write_scores
    from tests.conftest import make_tables
    from tests.training.conftest import write_tables

    data = write_tables(make_tables(), tmp_path / "data")  # reps r0..r5, named "Rep 0".."Rep 5"
    bands = {"r0": "high", "r1": "high", "r2": "low", "r3": "high"}
    managers = {r: "m1" for r in bands}
    ours = write_scores(_scores(bands, managers), tmp_path / "ours.parquet")
    theirs = write_scores(
        _scores({**bands, "x9": "high"}, {**managers, "x9": "m1"}), tmp_path / "theirs.parquet"
    )
    r = run_cli(
        tmp_path,
        "alerts",
        "--scores",
        str(theirs),
        "--data",
        str(data),
        "--dry-run",
        "--out",
        str(tmp_path / "d"),
    )
    assert r.exit_code == 2, r.stdout + r.stderr
    assert "1 of the 5 scored rep(s) are not in the data folder's reps table (e.g. x9)" in r.stderr
    assert "without their names" in r.stderr and "Pass as --data the folder" in r.stderr
    assert "internal error" not in r.stderr and not (tmp_path / "d").exists()
    # the folder the scores were made from: every digest names its reps
    r = run_cli(
        tmp_path,
        "alerts",
        "--scores",
        str(ours),
        "--data",
        str(data),
        "--dry-run",
        "--out",
        str(tmp_path / "d"),
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    body = json.loads((tmp_path / "d" / "digest_m1.json").read_text())
    assert {x["rep_id"]: x["name"] for x in body["reps"]} == {"r0": "Rep 0", "r1": "Rep 1", "r3": "Rep 3"}


def test_stdout_starts_with_the_digest_count_and_notes_go_to_stderr(batches, tmp_path):
    from models.scoring import write_scores

    _, now = batches
    n = write_scores(now, tmp_path / "now.parquet")
    r = run_cli(tmp_path, "alerts", "--scores", str(n), "--dry-run", "--out", str(tmp_path / "d"))
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0].startswith("3 digests"), r.stdout  # no remembered batch: all high are new
    assert "no previous batch" in r.stderr and "no previous batch" not in r.stdout


def test_the_digest_suggests_interventions_by_their_titles(batches):
    prev, now = batches
    now = now.assign(interventions=[["customer_service_training", "skills_training"]] * len(now))
    m1 = build_digests(now, prev)[0]
    text = m1.text()
    assert (
        "    suggested, best first:\n      1. Customer-service and relationship training\n      2. " in text
    ), text
    assert "customer_service_training" not in text and "skills_training" not in text
    rep = m1.to_json()["reps"][0]
    assert rep["interventions"] == ["customer_service_training", "skills_training"]  # ids for machines
    assert rep["intervention_titles"][0] == "Customer-service and relationship training"
    assert rep["intervention_titles_zh"][0] != rep["intervention_titles"][0]


def test_a_driver_without_a_sentence_writes_its_amount_in_the_scores_currency(batches):
    """Scores without prepared sentences (written before they had them) show label and value: an amount
    in the scores' currency (the model's), and "$" for scores from before they named one."""
    prev, now = batches
    now = now.copy()
    now["drivers"] = [
        [{"feature": "avg_won_deal_size_180d", "group": "deal_size", "value": 52_000.0, "contribution": 0.9}]
    ] * len(now)
    now["currency"] = "EUR"
    rep = build_digests(now, prev)[0].to_json()["reps"][0]
    assert rep["drivers"][0].endswith(": €52k") and rep["drivers_zh"][0].endswith("€5.2万")
    assert rep["drivers_zh"][0].endswith("：€5.2万")  # a Chinese label takes the full-width colon
    assert (
        build_digests(now.drop(columns=["currency"]), prev)[0]
        .to_json()["reps"][0]["drivers"][0]
        .endswith(": $52k")
    )


def test_titles_holding_a_semicolon_are_not_run_together_in_the_text_digest(batches):
    """'Simplify the sales process; automate admin' is one title: joined with '; ' beside others, the
    digest read as four suggestions for three, and which words belonged together could not be told."""
    prev, now = batches
    ids = ["process_simplification", "skills_training", "mentoring"]
    text = build_digests(now.assign(interventions=[ids] * len(now)), prev)[0].text()
    assert (
        "    suggested, best first:\n"
        "      1. Simplify the sales process; automate admin\n"
        "      2. Sales skills training (product, negotiation, closing)\n"
        "      3. Pair with a top performer; peer knowledge sharing\n"
    ) in text, text
    assert "admin; Sales" not in text
    assert "    why:\n      - " in text, text  # the reasons one a line too


def test_without_a_previous_batch_the_digest_does_not_say_the_reps_moved(batches):
    """With no earlier batch nobody is known to have moved: 'moved into the high-risk band' and 'newly at
    high risk' told a manager something about named reps that no data showed."""
    prev, now = batches
    first = build_digests(now, None)[0]
    assert first.first_batch
    assert first.subject().startswith("RepRadar: ") and "in the high-risk band" in first.subject()
    assert "newly" not in first.subject(), first.subject()
    text = first.text()
    assert "moved into" not in text and "newly" not in text, text
    assert f"of your team are in the high-risk band as of {first.as_of}" in text, text
    later = build_digests(now, prev)[0]  # with a previous batch, the words stay
    assert "newly at high risk" in later.subject() and "moved into the high-risk band" in later.text()


def test_the_first_batch_of_a_new_quota_period_lists_its_high_band_reps_even_if_they_were_high_before(
    batches,
):
    """A rep high at the end of last quarter and again in week 3 of this one was not 'new', so the manager
    heard nothing of the new quarter's risk. A risk is about one period's target: compared with a batch of
    the rep's earlier period, a high-band rep is news of this period, and the digest says which it is."""
    _, now = batches
    last_quarter = _scores(
        {"a": "high", "b": "medium", "c": "low", "d": "low", "e": "low", "f": "high"}, MANAGERS, "2024-03-25"
    ).assign(period_start=pd.Timestamp("2024-01-01"), period_end=pd.Timestamp("2024-03-31"))
    new = newly_high(now, last_quarter)
    assert sorted(new["rep_id"]) == ["a", "b", "c", "e", "f"]  # a and f were high last quarter
    assert new.set_index("rep_id")["new_period"].all()
    ds = {d.manager_id: d for d in build_digests(now, last_quarter)}
    assert sorted(ds) == ["m1", "m2", "m3"]  # m3's only rep, high last quarter too, is news of this one
    assert all(r["new_period"] for r in ds["m1"].to_json()["reps"])
    text = ds["m3"].text()
    assert "start this quota period in the high-risk band" in text and "moved into" not in text, text
    assert "- f: risk" in text and "first batch of this quota period (last period: high)" in text, text
    # within one period nothing changes: a rep already high in the previous batch is not listed again
    same = newly_high(now, batches[0])
    assert sorted(same["rep_id"]) == ["b", "c", "e"] and not same["new_period"].any()
    assert "moved into the high-risk band" in build_digests(now, batches[0])[0].text()


def _dry_run_with_reps(tmp_path, reps_of):
    """`alerts --dry-run --data` on the small organisation with its reps table changed by `reps_of`."""
    from models.scoring import write_scores
    from tests.conftest import make_tables
    from tests.training.conftest import write_tables

    tables = make_tables()
    data = write_tables(tables.replace(reps=reps_of(tables.reps)), tmp_path / "data")
    bands = {"r0": "high", "r1": "high", "r2": "low", "r3": "high"}
    scores = write_scores(_scores(bands, {r: "m1" for r in bands}), tmp_path / "scores.parquet")
    out = tmp_path / "d"
    r = run_cli(
        tmp_path, "alerts", "--scores", str(scores), "--data", str(data), "--dry-run", "--out", str(out)
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    return r, json.loads((out / "digest_m1.json").read_text()), (out / "digest_m1.txt").read_text()


def test_a_reps_table_without_names_is_said_once_and_the_digest_shows_rep_ids(tmp_path):
    # `name` is optional in the data contract: without it the digests went out nameless without a word
    r, body, text = _dry_run_with_reps(tmp_path, lambda reps: reps.drop(columns="name"))
    assert r.stderr.count("no 'name' column") == 1, r.stderr
    assert "reps table has no 'name' column" in r.stderr and "show rep ids instead of names" in r.stderr
    assert "empty" not in r.stderr, r.stderr  # the column is missing, not empty: the note says which
    assert "'name'" not in r.stdout  # a note, on stderr only
    assert [(x["rep_id"], x["name"]) for x in body["reps"]] == [("r3", None), ("r1", None), ("r0", None)]
    for rep in ("r0", "r1", "r3"):
        assert f"- {rep}: risk " in text  # the rep id, never an empty "()" name
    assert "()" not in text
    # the digest's JSON (the dry run's file, the webhook body, the e-mail's attachment) keeps the note
    assert len(body["notes"]) == 1 and "reps table has no 'name' column" in body["notes"][0], body["notes"]


def test_a_reps_table_whose_name_column_is_empty_is_told_from_one_without_it(tmp_path):
    r, body, _ = _dry_run_with_reps(tmp_path, lambda reps: reps.assign(name=None))
    assert r.stderr.count("'name' column") == 1, r.stderr
    assert "the 'name' column of the data folder's reps table is empty (blank in all " in r.stderr, r.stderr
    assert "has no 'name' column" not in r.stderr
    assert [x["name"] for x in body["reps"]] == [None, None, None]
    assert (
        len(body["notes"]) == 1
        and "'name' column of the data folder's reps table is empty" in body["notes"][0]
    )


def test_rep_names_says_whether_the_column_is_missing_empty_or_partly_blank():
    from reporting.alerts import rep_names

    scores = pd.DataFrame({"rep_id": ["r1", "r2", "r3"]})
    reps = pd.DataFrame({"rep_id": ["r1", "r2", "r3", "r4"], "name": ["Ann", " ", None, "Dan"]})
    names, note = rep_names(reps, scores)
    assert names == {"r1": "Ann", "r4": "Dan"} and note.startswith("2 of the 3 scored rep(s) have no name")
    assert "e.g. r2" in note
    # the folder reader adds a missing optional column, all missing: the file's own columns tell
    blank = reps.assign(name=None)
    names, note = rep_names(blank, scores, columns=["rep_id"])
    assert names == {} and "has no 'name' column" in note and "empty" not in note
    names, note = rep_names(blank, scores, columns=["rep_id", "name"])
    assert names == {} and "is empty (blank in all 4 rows)" in note and "has no" not in note
    assert rep_names(reps.drop(columns="name"), scores)[1].startswith("the data folder's reps table has no")
    assert rep_names(reps.assign(name="x"), scores) == ({r: "x" for r in reps["rep_id"]}, None)


def test_reps_with_a_blank_name_are_shown_by_rep_id_and_counted(tmp_path):
    def blank(reps):
        reps = reps.copy()
        reps["name"] = reps["name"].astype(object)
        reps.loc[reps["rep_id"] == "r1", "name"] = "  "
        reps.loc[reps["rep_id"] == "r3", "name"] = None
        return reps

    r, body, text = _dry_run_with_reps(tmp_path, blank)
    assert "2 of the 4 scored rep(s) have no name" in r.stderr and "e.g. r1" in r.stderr, r.stderr
    assert "has no 'name' column" not in r.stderr and "is empty" not in r.stderr
    assert {x["rep_id"]: x["name"] for x in body["reps"]} == {"r0": "Rep 0", "r1": None, "r3": None}
    assert "- r0 (Rep 0): risk " in text and "- r1: risk " in text and "- r3: risk " in text
    # the digest keeps how many of *its* reps have no name (never another team's rep id)
    assert body["notes"] == [
        "2 of the 3 rep(s) listed have no name in the data folder's reps table (column 'name' blank), "
        "so they are shown by rep id"
    ]
    # a table naming every scored rep says nothing
    r, body, _ = _dry_run_with_reps(tmp_path / "named", lambda reps: reps)
    assert "'name'" not in r.stderr, r.stderr
    assert body["notes"] == []


def test_a_reps_rank_is_said_to_be_the_organisations_not_the_teams(batches):
    prev, now = batches
    m2 = build_digests(now, prev)[1]  # m2's one new high-band rep, e, ranks 5th of the 6 scored reps
    assert m2.manager_id == "m2" and [r["rep_id"] for r in m2.reps] == ["e"]
    assert "- e: risk 84% (rank 5 of 6 in the organisation)" in m2.text()
    no_rank = build_digests(now.drop(columns=["rank"]), prev)[1].text()
    assert "- e: risk 84%, previously low\n" in no_rank and "rank" not in no_rank  # not "(rank None)"


def test_alerts_in_chinese_write_the_subject_and_the_text_in_chinese_and_the_same_json(batches, tmp_path):
    from models.scoring import write_scores
    from tests.reporting.conftest import english_runs

    prev, now = batches
    p, n = write_scores(prev, tmp_path / "prev.parquet"), write_scores(now, tmp_path / "now.parquet")
    args = ["alerts", "--scores", str(n), "--previous", str(p), "--dry-run"]
    r = run_cli(tmp_path, *args, "--out", str(tmp_path / "zh"), "--lang", "zh-CN")
    assert r.exit_code == 0, r.stdout + r.stderr
    text = (tmp_path / "zh" / "digest_m1.txt").read_text(encoding="utf-8")
    assert text.startswith("Subject: RepRadar：您团队有2名销售代表新进入高风险等级（截至2024-05-13）"), text
    assert "风险 82%（在全组织6人中排第" in text and "此前为低风险" in text, text
    assert "在途商机对剩余指标的覆盖倍数" in text and "原因：" in text  # the scores' zh texts
    assert english_runs(text, keep=("Subject", "RepRadar")) == [], text
    # the e-mail carries the same subject and body (encoded for the wire, read back as sent)
    d = build_digests(now, prev, names={"b": "Bea Lin"}, lang="zh-CN")[0]
    sent = email.message_from_bytes(
        email_message(d, "m1@example.org", AlertSettings(smtp_from="rr@example.org")).as_bytes(),
        policy=email.policy.default,
    )
    assert sent["Subject"] == d.subject() and sent["Subject"].startswith("RepRadar：您团队")
    assert "- b（Bea Lin）：风险 81%" in sent.get_body(("plain",)).get_content()
    # the JSON, the machines' part, is the same in both languages
    r = run_cli(tmp_path, *args, "--out", str(tmp_path / "en"))
    assert r.exit_code == 0, r.stdout + r.stderr
    for name in ("digest_m1.json", "digest_m2.json"):
        assert (tmp_path / "zh" / name).read_text() == (tmp_path / "en" / name).read_text()
    assert "rep(s) of your team moved into" in (tmp_path / "en" / "digest_m1.txt").read_text()
    r = run_cli(tmp_path, *args, "--out", str(tmp_path / "fr"), "--lang", "fr")
    assert r.exit_code == 2 and "en or zh-CN" in r.stderr and not (tmp_path / "fr").exists(), r.stderr


def test_the_email_map_can_name_a_managers_language(batches, tmp_path):
    prev, now = batches
    book = tmp_path / "managers.csv"
    book.write_text("manager_id,email,lang\nm1,ann@example.com,zh-CN\nm2,bo@example.com,\n")
    r = send_alerts(
        now, previous=prev, alert_settings=AlertSettings(email_map=book), dry_run_dir=tmp_path / "d"
    )
    assert [d.lang for d in r.digests] == ["zh-CN", "en"]  # m2's blank: the run's language
    assert "新进入高风险等级" in (tmp_path / "d" / "digest_m1.txt").read_text(encoding="utf-8")
    assert "newly at high risk" in (tmp_path / "d" / "digest_m2.txt").read_text()
    book.write_text("manager_id,email,lang\nm1,ann@example.com,zh\n")
    with pytest.raises(UserError, match=r"line 2: lang 'zh' for manager 'm1'; write en or zh-CN"):
        send_alerts(
            now, previous=prev, alert_settings=AlertSettings(email_map=book), dry_run_dir=tmp_path / "e"
        )


def test_the_digests_language_defaults_to_repradar_alerts_lang(batches, tmp_path):
    """REPRADAR_ALERTS_LANG: the language of digests when the run names none (the service's after each
    batch job, the command's without --lang); --lang and a manager's `lang` in the e-mail map win."""
    from models.scoring import write_scores

    assert AlertSettings().lang == "en" and AlertSettings(lang=" zh_cn").lang == "zh-CN"
    with pytest.raises(ValueError, match="'fr': RepRadar writes en or zh-CN"):
        AlertSettings(lang="fr")
    prev, now = batches
    r = send_alerts(
        now, previous=prev, alert_settings=AlertSettings(lang="zh-CN"), dry_run_dir=tmp_path / "s"
    )
    assert {d.lang for d in r.digests} == {"zh-CN"}
    assert "新进入高风险等级" in (tmp_path / "s" / "digest_m1.txt").read_text(encoding="utf-8")

    p, n = write_scores(prev, tmp_path / "prev.parquet"), write_scores(now, tmp_path / "now.parquet")
    args = ["alerts", "--scores", str(n), "--previous", str(p), "--dry-run"]
    zh = {"REPRADAR_ALERTS_LANG": "zh-CN"}
    assert run_cli(tmp_path, *args, "--out", str(tmp_path / "zh"), env=zh).exit_code == 0
    assert "新进入高风险等级" in (tmp_path / "zh" / "digest_m1.txt").read_text(encoding="utf-8")
    assert run_cli(tmp_path, *args, "--out", str(tmp_path / "en"), "--lang", "en", env=zh).exit_code == 0
    assert "newly at high risk" in (tmp_path / "en" / "digest_m1.txt").read_text()
    # a value that does not read names the variable, exit 2, nothing written, no traceback
    bad = run_cli(tmp_path, *args, "--out", str(tmp_path / "fr"), env={"REPRADAR_ALERTS_LANG": "fr"})
    assert (
        bad.exit_code == 2
        and "REPRADAR_ALERTS_LANG: Value error, 'fr': RepRadar writes en or zh-CN" in bad.stderr
    )
    assert "Traceback" not in bad.stderr and not (tmp_path / "fr").exists()
    port = run_cli(tmp_path, *args, "--out", str(tmp_path / "p"), env={"REPRADAR_ALERTS_SMTP_PORT": "x"})
    assert (
        port.exit_code == 2
        and "error: REPRADAR_ALERTS_SMTP_PORT: Input should be a valid integer" in port.stderr
    )
