"""Errors that evalkit shows to users.

Every error raised for bad input names *where* the problem is (a file, a field, a sample), so that
the CLI can print one line instead of a traceback from deep inside.
"""

from __future__ import annotations


class EvalkitError(Exception):
    """Base class for errors meant for the user; the CLI prints them without a traceback."""

    def __init__(self, message: str, *, where: str | None = None, option: str | None = None) -> None:
        self.message = message
        self.where = where
        self.option = option  # the run option that fixes it, e.g. "force"; the CLI names its flag
        super().__init__(f"{where}: {message}" if where else message)


class TaskError(EvalkitError):
    """A task definition or its data is invalid (names the file, field or sample)."""


class ConfigError(EvalkitError):
    """A run option, model id, key or endpoint setting is invalid."""


class BudgetError(EvalkitError):
    """The ruble budget cannot cover even one more call."""


class ImageError(TaskError):
    """An image is missing, unreadable, of an unsupported format or over the configured limits."""


class StorageError(EvalkitError):
    """The results folder cannot be written (disk full, permissions, a file where a folder should be)."""


class RunLocked(ConfigError):
    """Another process is writing the same run."""


class EvalkitWarning(UserWarning):
    """Something the user must know, though it does not stop the command (the CLI prints one line)."""
