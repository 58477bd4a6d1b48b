"""HR's quarter: the batch report (HTML + PDF), fairness audit, drift, intervention effects, manager alerts.

`build_report(scores, tables, settings, out=...)` writes the report; `reporting.alerts` sends the
manager digests. Heavy imports live in the submodules, so importing the package is cheap.
"""

from __future__ import annotations


def build_report(*args, **kwargs):
    """See `reporting.report.build_report`."""
    from reporting.report import build_report as _build

    return _build(*args, **kwargs)


__all__ = ["build_report"]
