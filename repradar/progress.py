"""Progress of long commands: library code says which stage it is in; a command line shows it.

`step("...")` does nothing unless a caller asked to see the stages (`shown()`), so the library stays
quiet inside the service and the tests. The lines go to stderr, flushed at once (a pipe or a log file
sees each stage when it starts, not all of them at the end), with the seconds since the start.
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

_sink: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "repradar_progress", default=None
)


def step(message: str) -> None:
    """Say that a stage starts (shown only inside `shown()`)."""
    sink = _sink.get()
    if sink is not None:
        sink(message)


@contextmanager
def shown(stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Within this block, every `step` is written to `stream` (default stderr) as "[  12.3 s] message"."""
    start = clock()

    def sink(message: str) -> None:
        print(f"[{clock() - start:7.1f} s] {message}", file=stream or sys.stderr, flush=True)

    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)
