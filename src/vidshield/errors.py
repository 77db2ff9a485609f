"""Typed errors. Every error a user can cause derives from :class:`VidshieldError`, so the CLI
can print it as one clear line (and exit with status 2) instead of a traceback."""

from __future__ import annotations


class VidshieldError(Exception):
    """Base class of the errors a user can cause (bad file, bad option, missing data)."""


class VideoDecodeError(VidshieldError):
    """A video could not be read. The message names the file and the reason."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read video {self.path!r}: {reason}")


class VideoEncodeError(VidshieldError):
    """A video could not be written."""


class DataRootError(VidshieldError):
    """A data set root is missing or does not have the expected layout."""


class CheckpointError(VidshieldError):
    """A checkpoint is missing, corrupt, or does not match the model asked for."""


class OutputError(VidshieldError, OSError):
    """An output file or folder cannot be written (missing or read-only folder, name too long,
    unsupported format). Also an ``OSError``, so code that catches file-system errors still does."""


class InputFormatError(VidshieldError):
    """A JSON (or other structured) input file is unreadable, too large, or not of the expected shape."""
