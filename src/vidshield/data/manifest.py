"""Clip manifests: ``FOLDER/manifest.json`` lists the clip files of a set folder (the adversarial
sets written by :func:`vidshield.attacks.write_adversarial_set`, or any list of clips to detect on).

The one reader of these files: every path it returns stays inside the folder, and every field it
is asked for has its type checked, so a manifest cannot point outside its set or crash a command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from vidshield.errors import DataRootError, InputFormatError
from vidshield.jsonio import contained_path, field, read_json
from vidshield.text import printable

__all__ = ["MANIFEST_NAME", "read_manifest"]

MANIFEST_NAME = "manifest.json"


def read_manifest(
    folder: str | os.PathLike, *, format: str | None = None, fields: Mapping[str, type] | None = None
) -> dict:
    """Read and check ``folder/manifest.json``.

    The manifest is an object whose ``"clips"`` lists the clip entries, or (when no ``format`` is
    asked for) that list itself. Every entry is an object with ``"file"``, a relative path that
    stays inside ``folder``, and an optional bool ``"success"`` (did the attack succeed).

    Args:
        format: the ``"format"`` the manifest must declare (e.g. ``vidshield-adversarial-set/1``).
        fields: more entries every clip must have: name -> ``int``, ``float`` (both >= 0) or ``bool``.

    Returns:
        The manifest object (a bare list comes back as ``{"clips": list}``); ``folder / clip["file"]``
        is each clip's path.

    Raises:
        DataRootError: ``folder`` has no manifest.
        InputFormatError: the manifest is not JSON of this shape (the message names the field).
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise DataRootError(f"{printable(folder)} is not a clip set: {MANIFEST_NAME} not found")
    what = printable(path)
    manifest = read_json(path, expect=dict if format else (dict, list))
    if isinstance(manifest, list):
        manifest = {"clips": manifest}
    if format is not None and manifest.get("format") != format:
        raise InputFormatError(
            f"{what} is not a {format} manifest (format {printable(repr(manifest.get('format')))[:60]})"
        )
    clips = field(manifest, "clips", list, what=what)
    for clip in clips:
        if not isinstance(clip, dict):
            raise InputFormatError(f"{what}: every clip entry must be an object with a 'file'")
        contained_path(folder, field(clip, "file", str, max_len=4096, what=what), what=what)
        field(clip, "success", bool, default=None, what=what)
        for key, kind in (fields or {}).items():
            field(clip, key, kind, lo=None if kind is bool else 0, what=what)
    return manifest
