"""Progress of long commands: library code says which stage it is in; a command line shows it.

`step("...")` does nothing unless a caller asked to see the stages (`shown()`), so the library stays
quiet inside the service and the tests. The lines go to stderr, flushed at once (a pipe or a log file
sees each stage when it starts, not all of them at the end), with the seconds since the start.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

_sink: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "repradar_progress", default=None
)
_timer = threading.Timer  # what `shown` starts for its `waiting` line (tests replace it)


def step(message: str) -> None:
    """Say that a stage starts (shown only inside `shown()`)."""
    sink = _sink.get()
    if sink is not None:
        sink(message)


@contextmanager
def shown(
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    *,
    waiting: str | None = None,
    after: float = 2.0,
) -> Iterator[None]:
    """Within this block, every `step` is written to `stream` (default stderr) as "[  12.3 s] message".

    `waiting`: written once if no step came within `after` seconds, since loading MLflow and LightGBM
    alone can take 10-30 s on a busy machine before the first stage; a quick answer (an error in the
    arguments) never shows it."""
    start = clock()
    lock = threading.Lock()
    state = {"said": False, "done": False}

    def write(message: str) -> None:
        print(f"[{clock() - start:7.1f} s] {message}", file=stream or sys.stderr, flush=True)

    def sink(message: str) -> None:
        with lock:
            state["said"] = True
            write(message)

    def nudge() -> None:
        with lock:
            if not (state["said"] or state["done"]):
                state["said"] = True
                write(waiting)

    timer = None
    if waiting:
        timer = _timer(after, nudge)
        timer.daemon = True
        timer.start()
    token = _sink.set(sink)
    try:
        yield
    finally:
        with lock:
            state["done"] = True
        if timer is not None:
            timer.cancel()
        _sink.reset(token)
