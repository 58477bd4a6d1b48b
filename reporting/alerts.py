"""Manager digests after a batch: reps newly in the high band, by webhook (JSON POST) and/or e-mail.

"Newly" means in the high band now and not in the previous batch (absent from it, or in another
band), or in the high band in the first batch of a new quota period: a risk is about one period's
target, so a rep high at the end of last quarter and again in week 3 of this one is news of this one. The previous batch is a scores file named by the caller, else the one the last alert run
remembered (`$REPRADAR_HOME/alerts/last_scores.parquet`), else none (every high-band rep is new,
and the digests say so). A dry run writes each digest to files instead of sending it.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import re
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pandas as pd

from models.currency import DEFAULT_CURRENCY, scores_currency
from reporting.labels import intervention_titles
from reporting.settings import AlertSettings
from repradar.errors import UserError

STATE_FILE = "last_scores.parquet"


@dataclass
class Digest:
    manager_id: str
    as_of: str
    model_version: str
    reps: list[
        dict
    ]  # rep_id, name, risk, rank, previous_band, drivers(_zh), interventions, intervention_titles(_zh)
    team_size: int
    high_total: int
    first_batch: bool
    more: int = 0  # new high-band reps not listed (beyond max_reps)
    scored: int = 0  # reps in the whole batch: a rep's rank is among them, not among this team
    notes: list[str] = field(default_factory=list)  # what the run noted of this digest (reps without names)
    lang: str = "en"  # the language of the subject and the text (models.i18n.LANGUAGES); not in the JSON

    def to_json(self) -> dict:
        return {
            "type": "repradar.high_band_digest",
            "manager_id": self.manager_id,
            "as_of": self.as_of,
            "model_version": self.model_version,
            "new_high_band": len(self.reps) + self.more,
            "high_band_total": self.high_total,
            "team_size": self.team_size,
            "first_batch": self.first_batch,
            "reps": self.reps,
            "not_listed": self.more,
            "notes": self.notes,
        }

    def subject(self) -> str:
        """The e-mail's subject. Without a previous batch nobody is known to have moved, so it does not say
        "newly": it would tell a manager something about named reps that no data showed."""
        n = len(self.reps) + self.more
        key = "digest.subject_first" if self.first_batch else "digest.subject_new"
        return self._t(key, n=n, as_of=self.as_of)

    def _t(self, key: str, **params) -> str:
        from models import i18n

        return i18n.text(self.lang, key, **params)

    def _band(self, band: str) -> str:
        from models import i18n

        key = f"digest.band.{band}"
        return self._t(key) if i18n.has(self.lang, key) else band

    def text(self) -> str:
        """The e-mail's body in the digest's language: the reasons and titles are the scores' own texts in
        it (`drivers_zh`, `intervention_titles_zh` for Chinese), the rep ids and names as in the data."""
        n = len(self.reps) + self.more
        moved = "digest.moved_first" if self.first_batch else "digest.moved_new"
        fresh = [bool(r.get("new_period")) for r in self.reps]
        if not self.first_batch and any(fresh):
            # a rep high at the end of last period and again now did not move: this period is what is new
            moved = "digest.moved_period" if all(fresh) else "digest.moved_mixed"
        zh = self.lang != "en"
        lines = [
            self._t("digest.headline", manager=self.manager_id, n=n, moved=self._t(moved), as_of=self.as_of),
            self._t("digest.totals", high=self.high_total, size=self.team_size, version=self.model_version),
        ]
        if self.first_batch:
            lines.append(self._t("digest.no_earlier"))
        lines.append("")
        for r in self.reps:
            who = (
                self._t("digest.who", rep=r["rep_id"], name=r["name"]) if r.get("name") else str(r["rep_id"])
            )
            if r.get("new_period"):
                last = (
                    self._t("digest.last_period", band=self._band(r["previous_band"]))
                    if r["previous_band"]
                    else ""
                )
                before = self._t("digest.first_of_period", last=last)
            elif r["previous_band"]:
                before = self._t("digest.previously", band=self._band(r["previous_band"]))
            elif self.first_batch:
                before = ""
            else:
                before = self._t("digest.not_in_previous")
            # the rank is the organisation's: "rank 8" heading a team of five reads as a mistake
            rank = ""
            if r.get("rank") is not None:
                rank = (
                    self._t("digest.rank_org", rank=r["rank"], scored=f"{self.scored:,}")
                    if self.scored
                    else self._t("digest.rank", rank=r["rank"])
                )
            risk = f"{r['risk']:.0%}"
            lines.append(self._t("digest.rep_line", who=who, risk=risk, rank=rank, before=before))
            # one reason and one suggestion a line: titles hold semicolons ("Simplify the sales process;
            # automate admin"), so joined with "; " they would run into each other
            drivers = (r.get("drivers_zh") or r["drivers"]) if zh else r["drivers"]
            if drivers:
                lines.append(self._t("digest.why"))
                lines += [f"      - {d}" for d in drivers]
            if r["interventions"]:
                own = r.get("intervention_titles_zh" if zh else "intervention_titles")
                titles = own or intervention_titles(r["interventions"], self.lang)
                lines.append(self._t("digest.suggested"))
                lines += [f"      {i}. {title}" for i, title in enumerate(titles, 1)]
        if self.more:
            lines.append(self._t("digest.more", n=self.more))
        lines += ["", self._t("digest.footer")]
        return "\n".join(lines) + "\n"


@dataclass
class AlertResult:
    digests: list[Digest]
    sent_webhook: list[str] = field(default_factory=list)
    sent_email: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    folder: Path | None = None  # the dry run's folder (created even when there is no digest)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        n = len(self.digests)
        out = [f"{n} digest{'' if n == 1 else 's'} (one per manager with reps newly in the high band)"]
        if self.folder is not None:
            out.append(f"dry run: wrote {len(self.written)} file(s) to {self.folder}")
        if self.sent_webhook:
            out.append(f"webhook: sent {len(self.sent_webhook)}")
        if self.sent_email:
            out.append(f"e-mail: sent {len(self.sent_email)}")
        out += [f"skipped: {s}" for s in self.skipped]
        out += [f"error: {e}" for e in self.errors]
        return out


# ---------------------------------------------------------------------------------------------
LANGS = {"en": "en", "zh": "zh-CN"}  # suffix of the scores' text fields -> models.i18n language


def _sentence(d, suffix: str) -> str | None:
    t = d.get(f"text_{suffix}") if isinstance(d, dict) else None
    return t.strip() if isinstance(t, str) and t.strip() else None


def _driver_text(d, suffix: str = "en", currency: str = DEFAULT_CURRENCY) -> str:
    """A driver in words: the scores' prepared sentence (`text_en` / `text_zh`) when it has one,
    else the feature's display label and its value ("Coverage of the remaining quota by open
    pipeline: 0.4x", amounts in the row's `currency`), never the raw column name."""
    text = _sentence(d, suffix)
    if text:
        return text
    if not isinstance(d, dict):
        return str(d)
    from models import i18n

    lang = LANGS[suffix]
    feature = str(d.get("feature") or "")
    if not feature:
        return i18n.text(lang, "features.unknown_feature", name="?")
    label = i18n.feature_label(feature, lang)
    value = d.get("value")
    try:
        shown = i18n.format_value(
            None if value is None else float(value),
            i18n.feature_unit(feature),
            lang,
            currency=currency,
            feature=feature,
        )
    except (TypeError, ValueError):
        shown = str(value)
    return i18n.text(lang, "misc.label_value", label=label, value=shown)


def rep_drivers(row, n: int, suffix: str = "en") -> list[str]:
    """Why a rep is at risk, in words, at most `n`: the `driver_groups` sentences (the risk-raising
    groups, as the dashboard shows them), else the per-feature `drivers` (their sentences, else
    readable labels)."""
    groups = [g for g in (_get(row, "driver_groups") or []) if _sentence(g, suffix)]
    if groups:
        return [_driver_text(g, suffix) for g in groups[:n]]
    currency = _currency(row)
    return [_driver_text(d, suffix, currency) for d in list(_get(row, "drivers") or [])[:n]]


def _currency(row) -> str:
    """The ISO code of a scores row's amounts (models.currency.scores_currency)."""
    return scores_currency(getattr(row, "currency", None))


def _get(row, name: str):
    v = getattr(row, name, None)
    if hasattr(v, "tolist") and not isinstance(v, str):  # numpy arrays from an in-memory frame
        v = v.tolist()
    return v if isinstance(v, list | tuple) else None


def check_batch(scores: pd.DataFrame, *, source: str = "the scores") -> None:
    """Refuse a batch the digests would misreport: one mixing model versions (or runs), as `report`
    refuses it (reporting.inputs), or one holding a rep more than once (two batches concatenated,
    several as-of days): each rep would be listed twice and the team sizes doubled."""
    from reporting.inputs import check_model_versions, repeated_reps, scores_run_id

    if scores is None or scores.empty:
        return
    why = (
        "The digests would list each rep once per version, with risks of models that are not one "
        "scale, and count the team sizes double"
    )
    try:
        check_model_versions(scores, why=why)
        scores_run_id(scores)
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    if "rep_id" not in scores.columns:
        raise UserError(f"{source} has no rep_id column: pass a scores file written by `repradar score`")
    dup, days = repeated_reps(scores)
    if dup:
        raise UserError(
            f"{source} holds {len(dup)} rep(s) more than once{days} (e.g. {', '.join(dup[:5])}): "
            "each would be listed twice and team sizes counted double. Alert on one batch: the file "
            "`repradar score --data DIR --as-of DATE --out FILE` writes."
        )


def check_previous(
    scores: pd.DataFrame, previous: pd.DataFrame | None, *, source: str = "the previous batch", hint: str = ""
) -> str | None:
    """Refuse a previous batch that shares no rep with this one: almost surely another
    organisation's file (or the wrong file), and compared with it every high-band rep would look new.
    A note (returned, for the caller to show) when it holds fewer than half of this batch's reps."""
    if previous is None or previous.empty or scores is None or scores.empty:
        return None
    if "rep_id" not in previous.columns:
        raise UserError(f"{source} has no rep_id column: pass a scores file written by `repradar score`")
    now = set(scores["rep_id"].astype(str))
    before = set(previous["rep_id"].astype(str))
    common = now & before
    if not common:
        raise UserError(
            f"{source} shares no rep with this batch ({len(now)} reps now, {len(before)} then, none in common): "
            "it is from another organisation or not a batch of this one, and every high-band rep would be "
            f"reported as new. {hint or 'Pass the previous batch of the same organisation.'}"
        )
    if len(common) < len(now) / 2:
        return (
            f"note: {source} holds only {len(common)} of this batch's {len(now)} reps; the others count "
            "as new if they are in the high band (is it a batch of the same organisation and scope?)"
        )
    return None


def newly_high(scores: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Rows of `scores` in the high band whose rep was not in the high band in `previous`, or whose
    previous row was of another quota period (`new_period`)."""
    now = scores[scores["risk_band"].astype(str) == "high"].copy()
    now["rep_id"] = now["rep_id"].astype(str)
    now["new_period"] = False
    if previous is None or previous.empty:
        now["previous_band"] = None
        return now
    prev = previous.copy()
    prev["rep_id"] = prev["rep_id"].astype(str)
    # the latest row per rep in the previous batch
    if "as_of" in prev.columns:
        prev = prev.sort_values("as_of", kind="stable")
    last = prev.drop_duplicates("rep_id", keep="last").set_index("rep_id")
    now["previous_band"] = now["rep_id"].map(last["risk_band"].astype(str))
    if "period_start" in last.columns and "period_start" in now.columns:
        before = pd.to_datetime(now["rep_id"].map(last["period_start"]))
        now["new_period"] = (before.notna() & (before != pd.to_datetime(now["period_start"]))).to_numpy()
    new = now[(now["previous_band"] != "high") | now["new_period"]].copy()
    new["previous_band"] = new["previous_band"].where(new["previous_band"].notna(), None)
    return new


def reps_file_columns(folder) -> list[str] | None:
    """The columns of a data folder's `reps` file as stored (None without one): the folder reader adds
    an absent optional column with every value missing, so only the file says whether `name` is there."""
    from features.io import read_raw, table_path

    path = table_path(Path(folder), "reps")
    return None if path is None else [str(c) for c in read_raw(path).columns]


def rep_names(
    reps: pd.DataFrame, scores: pd.DataFrame, *, columns: list[str] | None = None
) -> tuple[dict[str, str], str | None]:
    """The scored reps' names from a data folder's `reps` table, and a note when some cannot be named.

    `name` is optional in the data contract: a table without the column, one whose column is blank in
    every row, or a rep whose name is blank, gives digests that show the rep id alone, and the note
    says which of the three it is (and how many scored reps), rather than the digests going out
    without names without a word. `columns`: the reps file's columns as stored (`reps_file_columns`;
    default `reps.columns`), since a loaded table always has the column."""
    scored = scores["rep_id"].astype(str).drop_duplicates()
    if "name" not in (reps.columns if columns is None else columns) or "name" not in reps.columns:
        return {}, (
            "the data folder's reps table has no 'name' column (it is optional in the data contract), "
            "so the digests show rep ids instead of names"
        )
    names: dict[str, str] = {}
    for r, n in zip(reps["rep_id"].astype(str), reps["name"], strict=True):
        if n is not None and n == n and str(n).strip():
            names[r] = str(n).strip()
    if not names:
        return {}, (
            f"the 'name' column of the data folder's reps table is empty (blank in all {len(reps)} rows), "
            "so the digests show rep ids instead of names"
        )
    unnamed = sorted(set(scored) - set(names))
    if not unnamed:
        return names, None
    return names, (
        f"{len(unnamed)} of the {len(scored)} scored rep(s) have no name in the data folder's reps "
        f"table (column 'name' blank, e.g. {unnamed[0]}), so the digests show their rep ids instead"
    )


def _names_note(reps: list[dict], names: dict[str, str] | None, names_note: str | None) -> list[str]:
    """A digest's own note on its reps shown without a name: the run's note when no rep has one (it
    names no rep), else how many of this digest's reps, never another team's rep id."""
    if names is None:
        return []
    if not names:
        return [names_note] if names_note else []
    blank = [r["rep_id"] for r in reps if not r["name"]]
    if not blank:
        return []
    return [
        f"{len(blank)} of the {len(reps)} rep(s) listed have no name in the data folder's reps table "
        "(column 'name' blank), so they are shown by rep id"
    ]


def build_digests(
    scores: pd.DataFrame,
    previous: pd.DataFrame | None,
    *,
    names: dict[str, str] | None = None,
    names_note: str | None = None,
    max_reps: int = 20,
    n_drivers: int = 3,
    lang: str = "en",
) -> list[Digest]:
    """One digest per manager with at least one rep newly in the high band. `names`: from `--data`
    (None: not asked for); `names_note`: what `rep_names` said of them, kept in the digests' notes;
    `lang`: the language of the subject and the text (the JSON is the same in every language)."""
    new = newly_high(scores, previous)
    if new.empty:
        return []
    first = previous is None or previous.empty
    scores = scores.copy()
    scores["manager_id"] = scores["manager_id"].astype(str)
    digests = []
    for mgr, g in new.groupby(new["manager_id"].astype(str), sort=True):
        g = g.sort_values(["risk", "rep_id"], ascending=[False, True], kind="stable")
        team = scores[scores["manager_id"] == mgr]
        reps = []
        for r in g.head(max_reps).itertuples(index=False):
            ivs = list(getattr(r, "interventions", []) or [])
            reps.append(
                {
                    "rep_id": str(r.rep_id),
                    "name": (names or {}).get(str(r.rep_id)),
                    "risk": round(float(r.risk), 4),
                    "rank": int(r.rank) if hasattr(r, "rank") and pd.notna(r.rank) else None,
                    "previous_band": None if pd.isna(r.previous_band) else str(r.previous_band),
                    # the previous batch scored this rep's earlier quota period: `previous_band` is of that one
                    "new_period": bool(r.new_period),
                    "drivers": rep_drivers(r, n_drivers, "en"),
                    "drivers_zh": rep_drivers(r, n_drivers, "zh"),
                    "interventions": [str(i) for i in ivs],  # catalog ids, for machines
                    "intervention_titles": intervention_titles(ivs, "en"),  # for people
                    "intervention_titles_zh": intervention_titles(ivs, "zh-CN"),
                }
            )
        as_of = pd.Timestamp(g["as_of"].iloc[0]).date().isoformat() if "as_of" in g.columns else ""
        digests.append(
            Digest(
                manager_id=mgr,
                as_of=as_of,
                model_version=str(g["model_version"].iloc[0]) if "model_version" in g.columns else "",
                reps=reps,
                team_size=int(len(team)),
                high_total=int((team["risk_band"].astype(str) == "high").sum()),
                first_batch=first,
                more=max(0, len(g) - max_reps),
                scored=int(scores["rep_id"].nunique()),
                notes=_names_note(reps, names, names_note),
                lang=lang,
            )
        )
    return digests


# ---------------------------------------------------------------------------------------------
def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "manager"


def write_digests(digests: list[Digest], folder: Path) -> list[Path]:
    """Dry run: each digest as JSON (the webhook body) and as text (the e-mail body)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for d in digests:
        base = folder / f"digest_{_safe(d.manager_id)}"
        j = base.with_suffix(".json")
        t = base.with_suffix(".txt")
        j.write_text(json.dumps(d.to_json(), indent=1) + "\n")
        t.write_text(f"Subject: {d.subject()}\n\n{d.text()}")
        paths += [j, t]
    return paths


def post_webhook(d: Digest, settings: AlertSettings) -> None:
    """POST the digest as JSON; raises on a non-2xx answer or a network failure."""
    body = json.dumps(d.to_json()).encode("utf-8")
    req = urllib.request.Request(settings.webhook_url, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("User-Agent", "repradar-alerts")
    if settings.webhook_token is not None:
        req.add_header("Authorization", f"Bearer {settings.webhook_token.get_secret_value()}")
    with urllib.request.urlopen(req, timeout=settings.webhook_timeout_s) as resp:  # noqa: S310 - configured URL
        if not 200 <= resp.status < 300:
            raise RuntimeError(f"webhook answered {resp.status}")


def load_email_map(path: Path | None) -> dict[str, str]:
    """manager_id -> address from a CSV with columns manager_id,email (and optionally lang: email_languages)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.exists():
        raise UserError(
            f"REPRADAR_ALERTS_EMAIL_MAP {path} does not exist; write a CSV with columns manager_id,email"
        )
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"manager_id", "email"} <= set(reader.fieldnames):
            raise UserError(f"{path.name} needs the columns manager_id,email (it has {reader.fieldnames})")
        return {
            row["manager_id"].strip(): row["email"].strip() for row in reader if row.get("email", "").strip()
        }


def email_languages(path: Path | None) -> dict[str, str]:
    """manager_id -> language of their digest from the map's optional `lang` column (blank: the run's
    language): a manager who reads Chinese gets Chinese in a run that writes the others English."""
    from models.i18n import LANGUAGES

    if path is None or not Path(path).exists():  # a missing map is refused where addresses are read
        return {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if "lang" not in (reader.fieldnames or []):
            return {}
        langs = {}
        for line, row in enumerate(reader, 2):
            lang = (row.get("lang") or "").strip()
            if lang and lang not in LANGUAGES:
                raise UserError(
                    f"{Path(path).name} line {line}: lang {lang!r} for manager {row.get('manager_id')!r}; "
                    f"write {' or '.join(LANGUAGES)}, or leave it blank for the run's --lang"
                )
            if lang:
                langs[(row.get("manager_id") or "").strip()] = lang
        return langs


def email_message(d: Digest, to: str, settings: AlertSettings) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = d.subject()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Date"] = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    msg.set_content(d.text())
    msg.add_attachment(
        json.dumps(d.to_json(), indent=1).encode("utf-8"),
        maintype="application",
        subtype="json",
        filename=f"digest_{_safe(d.manager_id)}.json",
    )
    return msg


def send_emails(pairs: list[tuple[Digest, str]], settings: AlertSettings) -> None:
    """Send each (digest, address) over one SMTP connection."""
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            pw = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_user, pw)
        for d, to in pairs:
            smtp.send_message(email_message(d, to, settings))


def state_path(settings) -> Path:
    return Path(settings.resolved_home) / "alerts" / STATE_FILE


def send_alerts(
    scores: pd.DataFrame,
    *,
    previous: pd.DataFrame | None = None,
    alert_settings: AlertSettings | None = None,
    dry_run_dir: Path | None = None,
    names: dict[str, str] | None = None,
    names_note: str | None = None,
    lang: str | None = None,
) -> AlertResult:
    """Build the digests and deliver them (or write them, with `dry_run_dir`); `lang`: of their texts
    (None: the settings', REPRADAR_ALERTS_LANG)."""
    a = alert_settings or AlertSettings()
    lang = lang or a.lang
    check_batch(scores)
    check_previous(scores, previous)
    digests = build_digests(
        scores,
        previous,
        names=names,
        names_note=names_note,
        max_reps=a.max_reps,
        n_drivers=a.drivers,
        lang=lang,
    )
    # a language the e-mail map names for a manager is theirs, in the e-mail and in the dry run's text
    own = email_languages(a.email_map)
    digests = [dataclasses.replace(d, lang=own[d.manager_id]) if d.manager_id in own else d for d in digests]
    result = AlertResult(digests=digests)
    if dry_run_dir is not None:  # the folder exists afterwards, even empty: scripts can rely on it
        result.written = write_digests(digests, dry_run_dir)
        result.folder = Path(dry_run_dir)
        return result
    if not digests:
        return result
    if not a.webhook_url and not a.smtp_host:
        raise UserError(
            "no alert channel is configured: set REPRADAR_ALERTS_WEBHOOK_URL and/or REPRADAR_ALERTS_SMTP_HOST "
            "(with REPRADAR_ALERTS_SMTP_FROM and REPRADAR_ALERTS_EMAIL_MAP), or use --dry-run --out DIR"
        )
    no_address: list[str] = []
    if a.webhook_url:
        for d in digests:
            try:
                post_webhook(d, a)
                result.sent_webhook.append(d.manager_id)
            except (urllib.error.URLError, OSError, RuntimeError) as exc:
                result.errors.append(f"webhook for manager {d.manager_id}: {exc}")
    if a.smtp_host:
        if not a.smtp_from:
            raise UserError("REPRADAR_ALERTS_SMTP_FROM is not set: e-mail needs a sender address")
        book = load_email_map(a.email_map)
        pairs = []
        for d in digests:
            to = book.get(d.manager_id) or a.email_default
            if to:
                pairs.append((d, to))
            else:
                result.skipped.append(f"no e-mail address for manager {d.manager_id}")
                no_address.append(d.manager_id)
        if pairs:
            try:
                send_emails(pairs, a)
                result.sent_email += [d.manager_id for d, _ in pairs]
            except (smtplib.SMTPException, OSError) as exc:
                result.errors.append(f"e-mail: {exc}")
    # A digest that reached no channel is a failed delivery, not a note: the batch would be remembered
    # and next run those reps would no longer be new, so their manager would never hear of them. (With a
    # webhook, a manager without an address still gets the POST, or its failure is already an error.)
    if not a.webhook_url:
        for m in no_address:
            result.errors.append(
                f"manager {m}: the digest reached no one (no e-mail address, no webhook); add {m} to "
                "REPRADAR_ALERTS_EMAIL_MAP or set REPRADAR_ALERTS_EMAIL_DEFAULT, then run again"
            )
    return result


def remember(scores: pd.DataFrame, settings) -> Path:
    """Keep this batch as the next alert run's previous batch."""
    from models.scoring import write_scores

    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_scores(scores, path)


def remembered(settings) -> pd.DataFrame | None:
    from models.scoring import read_scores

    path = state_path(settings)
    return read_scores(path) if path.exists() else None
