"""CNN+LSTM (LRCN; Donahue et al., CVPR 2015): the sparse attack's victim and, with its
recurrence removed, the paper's detection network.

A 2D CNN turns every frame into a feature vector, an LSTM runs over the frame features, and a
linear classifier gives logits at every time step. The video logits are the **mean of the
per-step logits** (the paper averages the per-step predictions; averaging logits keeps the output
a proper logit vector for the cross-entropy loss and for attacks, and ranks classes the same way
in the common case).

The detection path (:meth:`LRCN.frame_logits`) removes the links between LSTM steps: each frame's
feature goes through the same LSTM cell from a zero state (h0 = c0 = 0) and the same classifier,
so every frame gets its own label f(n). :meth:`LRCN.forward_with_frames` computes the CNN features
once and feeds both paths, so detection costs little more than classification.

Training (see :func:`vidshield.models.training.train_classifier`) adds the cross-entropy of the
zero-state per-frame logits to that of the video logits (``frame_loss_weight``), so the detection
network is itself a good per-frame classifier.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from vidshield.models.base import InputSpec, VideoClassifier, normalize_video, with_frame_differences

_STAGE_CHANNELS = (64, 128, 256, 512)


class MaxPool2x2(nn.MaxPool2d):
    """``nn.MaxPool2d(2)`` whose inference pass (autograd off) takes the maximum of the four
    strided 2x2 phases: the same values bit for bit (a maximum rounds nothing), about 5x faster on
    a CPU than PyTorch's channels-first pooling kernel. With autograd on it is ``MaxPool2d``, so
    gradients (which ``maximum`` would split between equal values) are unchanged."""

    def __init__(self):
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return super().forward(x)
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
        x = x[..., :h, :w]
        return torch.maximum(
            torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2]), torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2])
        )


#: Inference runs the CNN on at most this many pixels (frames x H x W) at a time: 32 frames at 64x64.
#: The activations of a pass then stay in the caches: 0.48 ms of CPU per 64x64 frame (ut-lrcn, one
#: thread) in passes of 8-32 frames against 0.88 ms in passes of 64.
INFERENCE_PIXELS = 32 * 64 * 64


class FrameCNN(nn.Module):
    """Per-frame 2D CNN: four stages of ``blocks`` x (conv3x3 - BatchNorm - ReLU), each stage
    followed by a 2x2 max-pool, then global average pooling.

    Shape:
        ``(M, C, H, W)`` normalised frames (``in_channels`` C) -> ``(M, out_features)``. In eval mode each frame's
        output depends on that frame only (BatchNorm uses its running statistics), so at inference
        on a CPU (eval mode, autograd off) the frames go through in passes of about :data:`INFERENCE_PIXELS`
        (equal sizes, at least 2 frames each: oneDNN's convolution gives a lone frame other roundings,
        a pass of 2 or more frames the same bits as one pass of all of them).
    """

    def __init__(self, *, width: float = 1.0, blocks: int = 2, in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = in_channels
        for channels in _STAGE_CHANNELS:
            out_ch = max(1, int(round(channels * width)))
            for _ in range(blocks):
                layers += [
                    nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(out_ch),
                    nn.ReLU(inplace=True),
                ]
                in_ch = out_ch
            layers.append(MaxPool2x2())
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
        self.body = nn.Sequential(*layers)
        self.out_features = in_ch

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        per_pass = max(4, INFERENCE_PIXELS // (frames.shape[-2] * frames.shape[-1]))
        if self.training or torch.is_grad_enabled() or frames.device.type != "cpu" or frames.shape[0] <= per_pass:
            return self.body(frames)
        passes = -(-frames.shape[0] // per_pass)  # each of at least per_pass // 2 >= 2 frames
        return torch.cat([self.body(part) for part in frames.tensor_split(passes)])


class LRCN(VideoClassifier):
    """CNN+LSTM video classifier with a recurrence-free per-frame path.

    Args:
        num_classes: number of output classes K.
        width: channel multiplier of the frame CNN (1.0: stages of 64, 128, 256, 512 channels).
        blocks: convolutions per CNN stage.
        hidden: LSTM hidden size (512 in the paper's victim).
        dropout: dropout on the LSTM outputs before the classifier (training only).
        input_size: clip size (T, H, W) the model is trained for; any T >= 1 is accepted at
            inference, H x W must match.
        mean, std: per-channel normalisation applied inside the model to [0, 1] RGB input.
        motion: the CNN also sees each frame's difference to the previous frame (three more
            channels, computed inside the model; not in the paper). The per-frame path then labels
            frame t from frames t and t-1, still with no recurrence.

    Shape:
        ``forward``: ``(N, T, 3, H, W)`` in [0, 1] -> video logits ``(N, K)`` (mean over steps).
        ``frame_logits``: -> ``(N, T, K)``, each frame from a zero LSTM state.
        ``forward_with_frames``: -> both, sharing one CNN pass.
        ``frame_outputs``: -> video logits (or None), frame logits and the CNN features ``(N, T, F)``.
    """

    has_frame_logits = True

    def __init__(
        self,
        *,
        num_classes: int,
        width: float = 1.0,
        blocks: int = 2,
        hidden: int = 512,
        dropout: float = 0.5,
        input_size: tuple[int, int, int] = (40, 112, 112),
        mean: tuple[float, float, float] = (0.5, 0.5, 0.5),
        std: tuple[float, float, float] = (0.25, 0.25, 0.25),
        motion: bool = False,
    ):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if width <= 0 or blocks < 1 or hidden < 1:
            raise ValueError(f"width must be > 0, blocks and hidden >= 1; got {width}, {blocks}, {hidden}")
        t, h, w = (int(s) for s in input_size)
        if min(t, h, w) < 1 or min(h, w) < 16:
            raise ValueError(f"LRCN input_size (T, H, W) needs T >= 1 and H, W >= 16; got {tuple(input_size)}")
        self.input_spec = InputSpec(frames=t, height=h, width=w, mean=tuple(mean), std=tuple(std))
        self.num_classes = int(num_classes)
        self.motion = bool(motion)
        self.cnn = FrameCNN(width=width, blocks=blocks, in_channels=6 if self.motion else 3)
        # One layer, no inter-layer dropout: deterministic in train mode (see rnn_backward_mode).
        self.lstm = nn.LSTM(self.cnn.out_features, hidden, num_layers=1, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, self.num_classes)

    def frame_features(self, video: torch.Tensor) -> torch.Tensor:
        """CNN features of every frame. Shape: ``(N, T, 3, H, W)`` in [0, 1] -> ``(N, T, F)``."""
        self.check_input(video, exact_frames=False)
        n, t = video.shape[:2]
        x = normalize_video(video, self.input_spec)
        if self.motion:
            x = with_frame_differences(x)
        return self.cnn(x.flatten(0, 1)).view(n, t, -1)

    def _recurrent_logits(self, features: torch.Tensor) -> torch.Tensor:
        """``(N, T, F)`` -> per-step logits ``(N, T, K)`` of the LSTM run over the sequence."""
        out, _ = self.lstm(features)
        return self.classifier(self.dropout(out))

    def _zero_state_logits(self, features: torch.Tensor) -> torch.Tensor:
        """``(N, T, F)`` -> ``(N, T, K)``: every frame through the LSTM from h0 = c0 = 0."""
        n, t, f = features.shape
        out, _ = self.lstm(features.reshape(n * t, 1, f))
        return self.classifier(self.dropout(out)).view(n, t, -1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self._recurrent_logits(self.frame_features(video)).mean(dim=1)

    def frame_logits(self, video: torch.Tensor) -> torch.Tensor:
        """Per-frame logits with the recurrence removed (the detection network). ``(N, T, K)``."""
        return self._zero_state_logits(self.frame_features(video))

    def forward_with_frames(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(video_logits (N, K), frame_logits (N, T, K))`` from one CNN pass; equal to
        ``forward(video)`` and ``frame_logits(video)``."""
        video_logits, frame_logits, _ = self.frame_outputs(video, with_video_logits=True)
        return video_logits, frame_logits

    def frame_outputs(
        self, video: torch.Tensor, *, with_video_logits: bool = False
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """``(video_logits (N, K) or None, frame_logits (N, T, K), frame_features (N, T, F))`` from
        one CNN pass, the features equal to ``frame_features(video)`` (the detector's feature
        scores and the in-domain check read them)."""
        features = self.frame_features(video)
        video_logits = self._recurrent_logits(features).mean(dim=1) if with_video_logits else None
        return video_logits, self._zero_state_logits(features), features

    @contextmanager
    def rnn_backward_mode(self) -> Iterator[LRCN]:
        """Put only the LSTM in train mode inside the ``with`` block, then restore it.

        cuDNN computes the LSTM backward pass only in train mode. The LSTM here has one layer and
        no dropout, so train mode gives exactly the eval-mode outputs; the CNN (BatchNorm) and the
        classifier dropout keep their current mode. Attacks that need gradients through the model
        on CUDA use::

            model.eval()
            with model.rnn_backward_mode():
                loss = criterion(model(video), labels); loss.backward()
        """
        was_training = self.lstm.training
        self.lstm.train(True)
        try:
            yield self
        finally:
            self.lstm.train(was_training)
