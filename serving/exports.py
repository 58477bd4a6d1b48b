"""CSV downloads sent as they are read from the database (the intervention log's, the audit trail's): an
export of any size never sits whole in the service's memory."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from fastapi.responses import StreamingResponse
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


def csv_download(
    sessions: sessionmaker[Session],
    filename: str,
    header: Sequence[str],
    read: Read,
    cells: Cells,
    *,
    lineterminator: str = "\r\n",
    done: Done | None = None,
) -> StreamingResponse:
    """A CSV file of `header`, then `cells(row)` for each row that `read` yields, one piece sent per chunk
    read (`serving.store.read_in_chunks`). `read` runs in a session of its own, opened when the body is
    sent: the request's session may be closed by then. `done(rows, complete)` is called once the sending
    ends, however it ends (finished, the client gone, an error), with the rows actually sent."""
    sent = Sent()
    return _Download(
        _pieces(sessions, header, read, cells, lineterminator, sent),
        sent,
        done,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


class _Download(StreamingResponse):
    """A StreamingResponse that, when the sending ends, closes its reading (and with it the read's session
    and cursor, now rather than when the generator is collected) and then reports how far it got."""

    def __init__(self, pieces: Iterator[str], sent: Sent, done: Done | None, **kw: Any):
        super().__init__(pieces, **kw)
        self._reading, self._sent, self._done = pieces, sent, done

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # shielded: a client that went away cancels the sending, and that is what is to be recorded
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._finish)

    def _finish(self) -> None:
        self._reading.close()
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
    sessions: sessionmaker[Session],
    header: Sequence[str],
    read: Read,
    cells: Cells,
    lineterminator: str,
    sent: Sent,
) -> Iterator[str]:
    yield _lines([header], lineterminator)
    with sessions() as session:
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
