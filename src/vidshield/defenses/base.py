"""The :class:`Defense` interface every defense implements (temporal, ComDefend, the baselines).

One call signature for all of them::

    defense(video, *, polluted=None, generator=None) -> video

- ``video``: ``float32 (N, T, 3, H, W)`` in [0, 1]; the result has the same shape and range.
- ``polluted``: optional bool ``(N, T)``, the frames to purify. The temporal defense rebuilds
  exactly those frames and needs a mask (a :class:`ValueError` says so when it gets none, unless it
  was built with ``key_every``). The spatial defenses (ComDefend, JPEG, median, bit depth, H.264)
  purify every frame when ``polluted`` is None, and only the marked frames when it is given (the
  other frames are returned bit-identical; H.264 still encodes the whole video, since it predicts
  frames from each other, and keeps the marked frames of the result).
- ``generator``: optional ``torch.Generator`` for the defenses that draw random numbers (ComDefend's
  test-time noise); the deterministic defenses accept and ignore it.

:meth:`Defense.surrogate` and :meth:`Defense.bpda` take the same keyword arguments.
"""

from __future__ import annotations

import torch
from torch import nn

from vidshield.video import check_frame_mask


class Defense(nn.Module):
    """A purification step: ``forward(video, *, polluted=None, generator=None) -> video`` (see the
    module docstring for the arguments).

    Attributes:
        differentiable: False when the defense is not differentiable (quantisation, codecs,
            block matching); such a defense provides :meth:`surrogate`, a differentiable
            stand-in used by BPDA (Athalye et al. 2018) so adaptive attacks can run through it.
        frame_wise: True when each frame is purified on its own (ComDefend, JPEG, median, bit
            depth), so a video can be purified in chunks of frames with the same result.
    """

    differentiable: bool = True
    frame_wise: bool = False

    def forward(
        self,
        video: torch.Tensor,
        *,
        polluted: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        raise NotImplementedError

    def surrogate(
        self,
        video: torch.Tensor,
        *,
        polluted: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Differentiable approximation of ``forward`` for BPDA. Default: identity."""
        return video

    def bpda(
        self,
        video: torch.Tensor,
        *,
        polluted: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Forward value of the defense with the gradient of :meth:`surrogate` (straight-through).

        With a ``generator``, the forward pass and the surrogate see the same random draws (its
        state is restored between the two)."""
        if self.differentiable:
            return self(video, polluted=polluted, generator=generator)
        state = None if generator is None else generator.get_state()
        with torch.no_grad():
            purified = self(video, polluted=polluted, generator=generator)
        if state is not None:
            generator.set_state(state)
        approx = self.surrogate(video, polluted=polluted, generator=generator)
        return approx + (purified - approx).detach()


def apply_to_marked(video: torch.Tensor, polluted: torch.Tensor | None, purify) -> torch.Tensor:
    """Run a frame-wise ``purify(frames (1, M, 3, H, W)) -> same`` on the frames marked in
    ``polluted`` (all frames when None); unmarked frames are returned bit-identical.

    Differentiable when ``purify`` is (the unmarked frames pass the gradient unchanged)."""
    if polluted is None:
        return purify(video)
    n, t = video.shape[:2]
    check_frame_mask(polluted, n, t, name="polluted")
    mask = polluted.to(video.device)
    out = video.clone()
    if bool(mask.any()):
        out[mask] = purify(video[mask].unsqueeze(0))[0].to(out.dtype)
    return out
