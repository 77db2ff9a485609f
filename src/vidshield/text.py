"""Names from files and checkpoints shown to people as plain text.

File names need not be valid UTF-8 (Python carries the bad bytes as surrogates) and class names
come from files anyone can write, so both are made safe before they reach a terminal, a JSON
report or a plot: undecodable bytes become U+FFFD, control characters (terminal escape codes,
new lines) are written as ``\\xNN`` escapes.
"""

from __future__ import annotations

import os

__all__ = ["printable"]


def printable(value: object) -> str:
    """``str(value)`` safe to print: valid UTF-8, no control characters (escaped as ``\\xNN``)."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        raw = str(text).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that are not escaped bytes
        raw = str(text).encode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in raw.decode("utf-8", "replace"))


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
