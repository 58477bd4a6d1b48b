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


class _Timer:
    """threading.Timer without the waiting: the test fires it."""

    made: list[_Timer] = []

    def __init__(self, after, fn):
        self.after, self.fn, self.cancelled, self.daemon = after, fn, False, False
        _Timer.made.append(self)

    def start(self):
        pass

    def cancel(self):
        self.cancelled = True


def test_a_slow_start_is_said_once_and_only_when_no_stage_came_first(monkeypatch):
    import repradar.progress as progress

    monkeypatch.setattr(progress, "_timer", _Timer)
    out = io.StringIO()
    with shown(out, clock=lambda: 0.0, waiting="starting ..."):
        (timer,) = _Timer.made[-1:]
        assert timer.after == 2.0 and timer.daemon
        timer.fn()  # 2 s passed with nothing said
        timer.fn()
        step("first stage")
    assert out.getvalue().splitlines() == ["[    0.0 s] starting ...", "[    0.0 s] first stage"]
    assert timer.cancelled
    out = io.StringIO()
    with shown(out, clock=lambda: 0.0, waiting="starting ..."):
        step("first stage")
        _Timer.made[-1].fn()  # a stage came first: nothing more to say
    _Timer.made[-1].fn()  # nor once the command is over
    assert out.getvalue().splitlines() == ["[    0.0 s] first stage"]


def test_commands_that_can_start_slowly_say_so(monkeypatch, tmp_path):
    """train, score, report, tune-playbook and now promote and models: MLflow and LightGBM took 10-30 s
    to load on a busy machine, with nothing on the terminal."""
    from typer.testing import CliRunner

    import repradar.progress as progress
    from repradar.cli import STARTING, app

    class Fires(_Timer):
        def start(self):
            self.fn()

    monkeypatch.setattr(progress, "_timer", Fires)
    for args in (
        ["promote", "--version", "v3"],
        ["report", "--scores", "s.csv", "--data", str(tmp_path), "--out", "r.txt"],
    ):
        r = CliRunner().invoke(app, args, env={"REPRADAR_HOME": str(tmp_path / "home")})
        assert r.exit_code == 2, r.output
        assert r.stderr.splitlines()[0].endswith(f"] {STARTING}") and "error: " in r.stderr
