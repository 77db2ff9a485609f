"""Reading JSON the tool did not necessarily write: bounded, and checked against its expected shape.

Every JSON file vidshield reads (checkpoint metadata, detector configs, training state, adversarial
set manifests, reproduction caches, generator metadata) goes through :func:`read_json` (or
:func:`parse_json` for JSON embedded in another file), then its fields through :func:`field`.
Anything unexpected (not a regular file, too large, not UTF-8, invalid JSON, nesting deeper than
:data:`MAX_DEPTH`, integers of more than :data:`MAX_INT_DIGITS` digits, a list
where an object belongs, a string where a number belongs, a number out of range) raises the
caller's :class:`~vidshield.errors.VidshieldError` subclass with one line naming the file.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from vidshield.errors import InputFormatError
from vidshield.text import printable

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "REQUIRED",
    "read_json",
    "parse_json",
    "field",
    "contained_path",
]

#: Largest JSON file read (bytes).
MAX_BYTES = 64 * 1024 * 1024
#: Deepest nesting of lists and objects accepted.
MAX_DEPTH = 32
#: Longest integer accepted (decimal digits, sign excluded).
MAX_INT_DIGITS = 19

REQUIRED = object()


class _Reject(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Reject(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > 64:
        raise _Reject(f"a number written with {len(text)} characters (at most 64)")
    return float(text)


def _depth(obj: Any) -> int:
    """Nesting depth of lists and objects (iterative: no recursion limit)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, d)
            if d > MAX_DEPTH:
                return d
            stack.extend((v, d + 1) for v in (node.values() if isinstance(node, dict) else node))
    return deepest


def _kind_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true/false",
    }
    return " or ".join(names.get(k, "null" if k is type(None) else k.__name__) for k in kinds)


def _show(value: Any) -> str:
    text = printable(json.dumps(value, default=str) if not isinstance(value, str) else repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def parse_json(text: str | bytes, *, what: str, expect: type | tuple | None = dict, error=InputFormatError) -> Any:
    """Parse JSON text with the bounds of :func:`read_json`.

    Args:
        text: the JSON text (bytes must be UTF-8).
        what: how to name the source in messages (a file name, ``"checkpoint metadata"`` ...).
        expect: the required type of the top-level value (None: any).
        error: the exception class to raise.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise error(f"{what} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float)
    except _Reject as e:
        raise error(f"{what} is not usable JSON: {e}") from None
    except json.JSONDecodeError as e:
        raise error(f"{what} is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as e:  # e.g. Python's limit on integer string conversion
        raise error(f"{what} is not usable JSON: {e}") from None
    if _depth(value) > MAX_DEPTH:
        raise error(f"{what} is nested too deeply (at most {MAX_DEPTH} levels)")
    if expect is not None and (
        not isinstance(value, expect) or (isinstance(value, bool) and bool not in _tuple(expect))
    ):
        raise error(f"{what} must hold {_kind_name(expect)} at the top level, found {_kind_name(type(value))}")
    return value


def _tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def read_json(
    path: str | os.PathLike,
    *,
    what: str | None = None,
    expect: type | tuple | None = dict,
    max_bytes: int = MAX_BYTES,
    error=InputFormatError,
) -> Any:
    """Read a JSON file: a regular file of at most ``max_bytes``, UTF-8, parsed with the bounds of
    this module, whose top-level value is an ``expect`` (default an object).

    Raises:
        ``error`` (default :class:`~vidshield.errors.InputFormatError`): missing, not a regular
        file (``/dev/zero``, a folder, a FIFO), too large, or not JSON of the expected shape.
    """
    path = Path(path)
    what = what or printable(path)
    try:
        info = os.stat(path)  # before opening: opening a FIFO would block
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} is not a regular file")
        if info.st_size > max_bytes:
            raise error(f"{what} is too large ({info.st_size} bytes; at most {max_bytes})")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise error(f"{what} not found") from None
    except IsADirectoryError:
        raise error(f"{what} is a folder, not a JSON file") from None
    except OSError as e:
        raise error(f"cannot read {what}: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise error(f"{what} is too large (more than {max_bytes} bytes)")
    return parse_json(data, what=what, expect=expect, error=error)


def field(
    obj: dict,
    key: str,
    kind: type | tuple,
    *,
    what: str,
    default: Any = REQUIRED,
    lo: float | None = None,
    hi: float | None = None,
    max_len: int | None = None,
    items: type | tuple | None = None,
    choices=None,
    error=InputFormatError,
) -> Any:
    """``obj[key]`` checked: of type ``kind`` (``int`` excludes ``bool``; ``float`` accepts
    integers and returns a float), within ``[lo, hi]`` for numbers, at most ``max_len`` long for
    strings and lists, list items of type ``items``, one of ``choices``. A missing key (or null,
    unless ``type(None)`` is in ``kind``) gives ``default``, or raises when there is none."""
    kinds = _tuple(kind)
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None and type(None) not in kinds:
        if default is REQUIRED:
            raise error(f"{what}: {key!r} is missing (expected {_kind_name(kind)})")
        return default
    if value is None:
        return None
    if not _is(value, kinds):
        raise error(f"{what}: {key!r} must be {_kind_name(kind)}, got {_show(value)}")
    if float in kinds and isinstance(value, int) and int not in kinds:
        value = float(value)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    bounded = lo is not None or hi is not None
    if number and bounded and (math.isnan(value) or (lo is not None and value < lo) or (hi is not None and value > hi)):
        raise error(f"{what}: {key!r} must lie in [{lo}, {hi}], got {_show(value)}")
    if max_len is not None and isinstance(value, (str, list, dict)) and len(value) > max_len:
        raise error(f"{what}: {key!r} is too long ({len(value)} entries; at most {max_len})")
    if items is not None and isinstance(value, list) and not all(_is(v, _tuple(items)) for v in value):
        bad = next(v for v in value if not _is(v, _tuple(items)))
        raise error(f"{what}: every entry of {key!r} must be {_kind_name(items)}, got {_show(bad)}")
    if choices is not None and value not in choices:
        raise error(f"{what}: {key!r} must be one of {', '.join(map(str, choices))}, got {_show(value)}")
    return value


def _is(value: Any, kinds: tuple) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, tuple(k for k in kinds if k is not bool))


def contained_path(folder: str | os.PathLike, entry: str, *, what: str, error=InputFormatError) -> Path:
    """``folder / entry`` for a file name read from a manifest in ``folder``, refused unless it is
    relative and stays inside ``folder`` (no absolute paths, no ``..``, no symbolic link out)."""
    if not isinstance(entry, str) or not entry or "\x00" in entry:
        raise error(f"{what}: a clip's 'file' must be a non-empty relative path, got {_show(entry)}")
    folder = Path(folder)
    candidate = folder / entry
    root = folder.resolve()
    if Path(entry).is_absolute() or ".." in Path(entry).parts or not candidate.resolve().is_relative_to(root):
        raise error(f"{what}: clip file {_show(entry)} is outside the set folder {printable(folder)}")
    return candidate
