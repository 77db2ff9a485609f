"""The JSON Schema of a scan report (what ``vidshield scan --json`` prints and writes, what the
service's job report and the page read): one versioned contract that the tests validate every
report against.

``verdict`` is ``clean``, ``sparse`` or ``dense`` (the detector's answer, acted on), or
``out_of_domain``: the video is far from the footage the detection network was calibrated on, so
there is no verdict and nothing was defended (``detector_verdict`` keeps what the detector alone
said). ``truncated`` says the file's data ends before what its container declares: the frames
that decode (``frames_decoded`` of ``frames_declared``) were scanned.
"""

from __future__ import annotations

__all__ = ["SCAN_REPORT_VERSION", "SCAN_REPORT_SCHEMA", "VERDICT_VALUES"]

SCAN_REPORT_VERSION = "vidshield-scan-report/2"
VERDICT_VALUES = ("clean", "sparse", "dense", "out_of_domain")

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_INDEX_LIST = {"type": "array", "items": {"type": "integer", "minimum": 0}}
_PROBS = {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}}

_WINDOW = {
    "type": "object",
    "required": ["start", "verdict", "alpha", "score", "exception_frames", "frame_labels", "defense", "label", "probs"],
    "properties": {
        "start": {"type": "integer", "minimum": 0},
        "verdict": {"enum": ["clean", "sparse", "dense"]},
        "alpha": {"type": "number", "minimum": 0},
        "score": {"type": "number"},
        "exception_frames": _INDEX_LIST,
        "frame_labels": _INDEX_LIST,
        "defense": {"enum": ["none", "temporal", "spatial"]},
        "squeezed": {"type": "boolean"},
        "vote_flag": {"type": "boolean"},
        "rebuilt_frames": _INDEX_LIST,
        "label_before": {"type": "integer", "minimum": 0},
        "label": {"type": "integer", "minimum": 0},
        "probs": _PROBS,
        "seconds": {"type": "object", "additionalProperties": {"type": "number"}},
        "class_before": {"type": "string"},
        "class": {"type": "string"},
    },
}

SCAN_REPORT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCAN_REPORT_VERSION,
    "title": "vidshield scan report",
    "type": "object",
    "required": [
        "schema",
        "video",
        "model",
        "classifier",
        "verdict",
        "detector_verdict",
        "in_domain",
        "domain_warning",
        "num_frames",
        "frames_decoded",
        "frames_declared",
        "truncated",
        "warnings",
        "label_before",
        "label",
        "exception_frames",
        "windows_fired",
        "windows_allowed",
        "windows",
        "about",
    ],
    "properties": {
        "schema": {"const": SCAN_REPORT_VERSION},
        "video": {"type": "string"},
        "model": {"type": "string"},
        "classifier": {"type": "string"},
        "label_space": {"type": ["array", "null"], "items": {"type": "string"}},
        "verdict": {"enum": list(VERDICT_VALUES)},
        "detector_verdict": {"enum": ["clean", "sparse", "dense"]},
        "in_domain": {"type": ["boolean", "null"]},
        "domain": {"type": ["object", "null"]},
        "domain_warning": {"type": ["string", "null"]},
        "about": {"type": "string"},
        "score_name": {"type": "string"},
        "gamma1": {"type": "number"},
        "gamma2": {"type": "number"},
        "vote": {"type": "boolean"},
        "squeeze_check": {"type": "boolean"},
        "target_fpr": _NUMBER_OR_NULL,
        "detection_network": {"type": ["string", "null"]},
        "config": {"type": ["string", "null"]},
        "num_frames": {"type": "integer", "minimum": 1},
        "frames_decoded": {"type": "integer", "minimum": 1},
        "frames_declared": {"type": ["integer", "null"], "minimum": 0},
        "truncated": {"type": "boolean"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "label_before": {"type": "integer", "minimum": 0},
        "label": {"type": "integer", "minimum": 0},
        "class_before": {"type": "string"},
        "class": {"type": "string"},
        "exception_frames": _INDEX_LIST,
        "windows_fired": {"type": "integer", "minimum": 0},
        "windows_allowed": {"type": ["integer", "null"], "minimum": 0},
        "windows": {"type": "array", "minItems": 1, "items": _WINDOW},
        "report": {"type": "string"},
        "plot": {"type": "string"},
        "defended": {"type": "string"},
    },
    # the verdict never contradicts the in-domain check: out of domain <=> no verdict
    "allOf": [
        {
            "if": {"properties": {"in_domain": {"const": False}}},
            "then": {"properties": {"verdict": {"const": "out_of_domain"}, "domain_warning": {"type": "string"}}},
            "else": {
                "properties": {"verdict": {"enum": ["clean", "sparse", "dense"]}, "domain_warning": {"const": None}}
            },
        },
    ],
}
