"""Golden files: values stored in ``tests/expected/`` and compared exactly.

Regenerate them on purpose (after a change meant to change the numbers) with
``VIDSHIELD_REGEN_GOLDEN=1 pytest tests/eval/test_golden.py tests/eval/test_reproduce.py`` and
review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

EXPECTED = Path(__file__).resolve().parents[1] / "expected"


def check_golden(name: str, value) -> None:
    """Compare ``value`` (JSON-able) with ``tests/expected/NAME`` exactly; with
    ``VIDSHIELD_REGEN_GOLDEN=1`` write it instead."""
    path = EXPECTED / name
    value = json.loads(json.dumps(value))
    if os.environ.get("VIDSHIELD_REGEN_GOLDEN") == "1":
        path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")
    assert path.is_file(), f"{path} is missing: run with VIDSHIELD_REGEN_GOLDEN=1 to create it"
    assert value == json.loads(path.read_text())
