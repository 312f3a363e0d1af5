"""The `evalkit` command (`commands`) and its terminal tables (`display`)."""

from evalkit.cli.commands import main

__all__ = ["main"]
