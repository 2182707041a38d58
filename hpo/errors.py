"""Errors a user can act on.

Every error hpo raises for bad input is a `HpoError`: the CLI prints its message without a
traceback (unless `--debug`) and exits with its `exit_code`.
"""

from __future__ import annotations

from dataclasses import dataclass


class HpoWarning(UserWarning):
    """Warnings raised by hpo itself (the test suite turns them into errors)."""


class SpecWarning(HpoWarning):
    """A spec that is valid but likely not what was meant; its message names the file, line
    and key, as a `SpecIssue` does (the CLI shows it as it shows errors)."""


class HpoDeprecationWarning(HpoWarning, FutureWarning):
    """Something hpo will stop accepting in a coming release.

    A `FutureWarning`, which Python shows by default, since it is meant for the users of hpo's
    API rather than only for developers; an `HpoWarning`, so the test suite errors on it.
    """


class HpoError(Exception):
    """Base class of the errors hpo reports to a user; `exit_code` is what the CLI returns."""

    exit_code = 1


class UsageError(HpoError):
    """A command was called wrongly (unknown experiment, bad option value)."""

    exit_code = 2


class MissingStore(UsageError):
    """A command that only reads found no store where it looked (it creates none)."""


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec: where it is and what to do about it."""

    key: str  # dotted path, "" for the document itself
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        where = source if self.line is None else f"{source}:{self.line}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class SpecError(HpoError):
    """A spec is invalid; raised before Ray starts, listing every problem found."""

    exit_code = 2

    def __init__(self, source: str, issues: list[SpecIssue]):
        self.source = source
        self.issues = sorted(issues, key=lambda issue: (issue.line is None, issue.line or 0))
        count = f"{len(issues)} problems" if len(issues) > 1 else "1 problem"
        lines = [f"invalid spec {source} ({count}):"]
        lines += [f"  {issue.render(source)}" for issue in self.issues]
        super().__init__("\n".join(lines))


class RunFailed(HpoError):
    """A search ran but no trial finished without an error."""

    exit_code = 1


class UnsafeCheckpoint(HpoError):
    """A checkpoint file holds more than tensors and plain data, so it was not loaded."""

    exit_code = 1


class RunInterrupted(HpoError):
    """A search was stopped by Ctrl-C or SIGTERM; what it did is in the store, and
    `hpo resume` goes on from there."""

    exit_code = 130  # as for a process ended by SIGINT

    def __init__(self, name: str, resume_command: str):
        self.name = name
        self.resume_command = resume_command
        super().__init__(f"{name} was interrupted; continue it with: {resume_command}")
