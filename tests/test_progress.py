"""Long commands say which stage they are in, on stderr, as each stage starts; library code is quiet."""

from __future__ import annotations

import io

from repradar.progress import shown, step


def test_steps_show_only_inside_shown_with_the_time_since_the_start():
    out = io.StringIO()
    ticks = iter([100.0, 100.0, 112.34])
    step("before: nobody asked")
    with shown(out, clock=lambda: next(ticks)):
        step("first stage")
        step("second stage")
    step("after: quiet again")
    assert out.getvalue().splitlines() == ["[    0.0 s] first stage", "[   12.3 s] second stage"]
