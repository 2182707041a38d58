"""The `hpo` command (click): run, resume, validate, show, best, export, report."""

from hpo.cli._app import cli, main

__all__ = ["cli", "main"]
