"""Temporal defense: block-matching motion compensation + H.264 integer-DCT quantised residual."""

from vidshield.defenses.temporal.defense import (
    DEFAULT_QP,
    TemporalDefense,
    defend_stream,
    key_frame_mask,
    rebuild_frames,
    rebuild_frames_uint8,
)
from vidshield.defenses.temporal.intdct import forward_int_dct, inverse_int_dct
from vidshield.defenses.temporal.motion import (
    SEARCH_METHODS,
    block_match,
    estimate_motion,
    frame_planes,
    motion_compensate,
)
from vidshield.defenses.temporal.quant import code_residual, dequantize, quant_step, quantize

__all__ = [
    "DEFAULT_QP",
    "SEARCH_METHODS",
    "TemporalDefense",
    "block_match",
    "code_residual",
    "defend_stream",
    "dequantize",
    "estimate_motion",
    "forward_int_dct",
    "frame_planes",
    "inverse_int_dct",
    "key_frame_mask",
    "motion_compensate",
    "quant_step",
    "quantize",
    "rebuild_frames",
    "rebuild_frames_uint8",
]
