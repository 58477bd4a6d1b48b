"""CSV downloads sent as they are read from the database (the intervention log's, the audit trail's): an
export of any size never sits whole in the service's memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

Read = Callable[[Session], Iterator[list[Any]]]  # a session -> the rows, a chunk of the cursor at a time
Cells = Callable[[Any], Sequence[Any]]  # one row -> its CSV cells


def csv_download(
    sessions: sessionmaker[Session],
    filename: str,
    header: Sequence[str],
    read: Read,
    cells: Cells,
    *,
    lineterminator: str = "\r\n",
) -> StreamingResponse:
    """A CSV file of `header`, then `cells(row)` for each row that `read` yields, one piece sent per chunk
    read (`serving.store.read_in_chunks`). `read` runs in a session of its own, opened when the body is
    sent: the request's session may be closed by then."""
    return StreamingResponse(
        _pieces(sessions, header, read, cells, lineterminator),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _pieces(
    sessions: sessionmaker[Session], header: Sequence[str], read: Read, cells: Cells, lineterminator: str
) -> Iterator[str]:
    yield _lines([header], lineterminator)
    with sessions() as session:
        for rows in read(session):
            yield _lines(map(cells, rows), lineterminator)


def _lines(rows: Iterable[Sequence[Any]], lineterminator: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=lineterminator).writerows(rows)
    return out.getvalue()
