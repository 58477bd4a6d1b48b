"""CSV downloads sent as they are read from the database (the intervention log's, the audit trail's): an
export of any size never sits whole in the service's memory, and it reads one snapshot of the database,
taken when it is asked for (on PostgreSQL; see `snapshot`)."""

from __future__ import annotations

import contextlib
import csv
import io
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from fastapi.responses import StreamingResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("repradar.serving")

Read = Callable[[Session], Iterator[list[Any]]]  # a session -> the rows, a chunk of the cursor at a time
Cells = Callable[[Any], Sequence[Any]]  # one row -> its CSV cells
Done = Callable[[int, bool], None]  # (rows sent, whether the whole export was sent) -> None


@dataclass
class Sent:
    """How far a download got: the rows handed to the server, and whether that was the whole file."""

    rows: int = 0
    complete: bool = False


@contextlib.contextmanager
def snapshot(sessions: sessionmaker[Session], idle_timeout_s: float | None = None) -> Iterator[Session]:
    """A session for a download, which reads one snapshot of the database in all its statements: what the
    export counts or bounds when it is asked for (its event's count, the newest id) and every chunk sent
    later. On PostgreSQL its transaction is REPEATABLE READ and READ ONLY: the snapshot is taken by its first
    statement and holds until `csv_download` closes the session at the end of the sending, whatever
    commits meanwhile (under READ COMMITTED a row whose id was taken before the export was asked for, by a
    transaction that committed later, would be sent). SQLite has one writer at a time, so no row commits
    with an id below one already visible: a plain session with the id bound serves.

    With `idle_timeout_s`, PostgreSQL ends the download's transaction once its client has read nothing for
    that long: the transaction is idle between chunks while the client reads, so a client that stalls
    would otherwise hold a pooled connection (and the snapshot, which holds back vacuum) for as long as it
    likes, and a few dozen such clients would leave every request a 503.

    Closed here when the request fails before `csv_download` has it."""
    session = sessions()
    try:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(
                execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            )
            if idle_timeout_s:
                # local to this transaction: the pooled connection keeps no trace of it afterwards
                session.execute(
                    text("SELECT set_config('idle_in_transaction_session_timeout', :ms, true)"),
                    {"ms": str(int(idle_timeout_s * 1000))},
                )
        yield session
    except BaseException:
        session.close()
        raise


def csv_download(
    session: Session,
    filename: str,
    header: Sequence[str],
    read: Read,
    cells: Cells,
    *,
    lineterminator: str = "\r\n",
    done: Done | None = None,
) -> StreamingResponse:
    """A CSV file of `header`, then `cells(row)` for each row that `read(session)` yields, one piece sent
    per chunk read (`serving.store.read_in_chunks`). `session` is the export's own (`snapshot`), not the
    request's, which may be closed by the time the body is sent; the download closes it when the sending
    ends. `done(rows, complete)` is called then, however it ends (finished, the client gone, an error),
    with the rows actually sent."""
    sent = Sent()
    return _Download(
        _pieces(session, header, read, cells, lineterminator, sent),
        session,
        sent,
        done,
        media_type="text/csv",
        headers=_disposition(filename),
    )


def csv_head(filename: str) -> StreamingResponse:
    """The answer to a HEAD of a CSV download: the GET's status and headers, no row read. The route's HEAD
    twin (`serving.routing.with_head`) runs the GET's handler, which answers with this instead of
    recording and reading an export: a HEAD sends no body, so no export happens."""
    return head_only("text/csv", filename)


def head_only(media_type: str, filename: str | None = None) -> StreamingResponse:
    """A HEAD's answer for an export or a download, built without reading what the GET would send: its type
    (and file name), no Content-Length, which only the reading would give (RFC 9110 9.3.2 lets a HEAD leave
    out such fields)."""
    return StreamingResponse(
        iter(()), media_type=media_type, headers=_disposition(filename) if filename else None
    )


def _disposition(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


class _Download(StreamingResponse):
    """A StreamingResponse that, when the sending ends, closes its reading and its session (and with them
    the cursor and the snapshot's transaction, now rather than when they are collected) and then reports
    how far it got."""

    def __init__(self, pieces: Iterator[str], session: Session, sent: Sent, done: Done | None, **kw: Any):
        super().__init__(pieces, **kw)
        self._reading, self._session, self._sent, self._done = pieces, session, sent, done

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # shielded: a client that went away cancels the sending, and that is what is to be recorded
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._finish)

    def _finish(self) -> None:
        try:
            self._reading.close()
        finally:
            self._session.close()
        if self._done is None:
            return
        try:
            self._done(self._sent.rows, self._sent.complete)
        except Exception:  # the file is out already: nothing to answer, the log says what was not recorded
            log.exception(
                "the end of a CSV export (%d rows, complete: %s) could not be recorded",
                self._sent.rows,
                self._sent.complete,
            )


def _pieces(
    session: Session,
    header: Sequence[str],
    read: Read,
    cells: Cells,
    lineterminator: str,
    sent: Sent,
) -> Iterator[str]:
    yield _lines([header], lineterminator)
    for rows in read(session):
        yield _lines(map(cells, rows), lineterminator)
        # counted when the next piece is asked for, which is after this one was handed to the server:
        # a download cut short never counts the rows it did not send
        sent.rows += len(rows)
    sent.complete = True


def _lines(rows: Iterable[Sequence[Any]], lineterminator: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=lineterminator).writerows(rows)
    return out.getvalue()
