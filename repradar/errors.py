"""Errors that mean "the user must change something": the CLI exits 2 and the API answers 4xx."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input or request, with a message that says what to do."""


class Unavailable(UserError):
    """A server the product needs (the MLflow registry) cannot be reached: the user's to fix or wait for, so
    exit 2 on the command line, but 503 (retry later) from the service, whose caller did nothing wrong."""


class ContractError(UserError):
    """Input data that breaks the data contract; carries every failure found."""

    def __init__(self, failures: list, message: str | None = None):
        self.failures = list(failures)
        super().__init__(message or self.render())

    def render(self) -> str:
        lines = [f"{len(self.failures)} contract violation(s):"]
        lines += [f"  - {f}" for f in self.failures]
        return "\n".join(lines)
