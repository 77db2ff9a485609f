"""C3D (Tran, Bourdev, Fergus, Torresani, Paluri; ICCV 2015): the dense attack's victim.

Eight 3x3x3 convolutions and five max-pools, then two 4096-wide fully connected layers::

    conv1 64   pool1 (1,2,2)
    conv2 128  pool2 (2,2,2)
    conv3a/3b 256  pool3 (2,2,2)
    conv4a/4b 512  pool4 (2,2,2)
    conv5a/5b 512  pool5 (2,2,2), padding (0,1,1)   -> 512 x 1 x 4 x 4 = 8192 for 16x112x112
    fc6 4096, fc7 4096 (ReLU + dropout 0.5), fc8 = classes

About 78.4 M parameters with 101 classes. ``width`` scales every channel count and the fc size
(``width=1/8`` gives a ~1 M parameter model that trains on a CPU); ``input_size`` sets (T, H, W)
and the flattened size follows from it. ``motion`` feeds each frame's difference to the previous
one as three more input channels (not in the paper; see :class:`C3D`). ``batch_norm`` (off in the published model, on in the
small variants) adds BatchNorm after each convolution.
"""

from __future__ import annotations

import torch
from torch import nn

from vidshield.models.base import InputSpec, VideoClassifier, normalize_video, with_frame_differences

# (name, output channels at width 1, pool after it: (kernel, padding) or None)
_C3D_LAYERS: tuple[tuple[str, int, tuple | None], ...] = (
    ("conv1", 64, ((1, 2, 2), (0, 0, 0))),
    ("conv2", 128, ((2, 2, 2), (0, 0, 0))),
    ("conv3a", 256, None),
    ("conv3b", 256, ((2, 2, 2), (0, 0, 0))),
    ("conv4a", 512, None),
    ("conv4b", 512, ((2, 2, 2), (0, 0, 0))),
    ("conv5a", 512, None),
    ("conv5b", 512, ((2, 2, 2), (0, 1, 1))),
)
_C3D_FC = 4096


def scaled_channels(channels: int, width: float) -> int:
    """``round(channels * width)``, at least 1."""
    return max(1, int(round(channels * width)))


def c3d_feature_shape(input_size: tuple[int, int, int]) -> tuple[int, int, int]:
    """(T, H, W) after the five pools of C3D (convolutions keep the size: padding 1).

    Raises:
        ValueError: the clip is too small for the pooling schedule (any size reaches 0).
    """
    size = tuple(int(s) for s in input_size)
    for _, _, pool in _C3D_LAYERS:
        if pool is None:
            continue
        kernel, padding = pool
        size = tuple((s + 2 * p - k) // k + 1 for s, k, p in zip(size, kernel, padding))
        if min(size) < 1:
            raise ValueError(
                f"C3D input_size {tuple(input_size)} (T, H, W) is too small for its five pools; "
                "use at least 16 frames and 16x16 pixels"
            )
    return size


class C3D(VideoClassifier):
    """C3D video classifier.

    Args:
        num_classes: number of output classes K.
        width: channel and fc-size multiplier (1.0 = the published model).
        input_size: clip size (T, H, W); the published model uses (16, 112, 112).
        dropout: dropout after fc6 and fc7 (0.5 in the paper).
        batch_norm: add BatchNorm after every convolution (not in the paper; the small variants use
            it because plain C3D trained from scratch on a small data set sits at chance for many
            epochs). In eval mode it is a fixed per-channel affine map, so clips stay independent.
        mean, std: per-channel normalisation applied inside ``forward`` to [0, 1] RGB input.
        motion: append the frame differences as three more channels (computed inside the model,
            so the input is still RGB): a motion input for small data sets with a static scene.

    Shape:
        ``forward``: ``float32 (N, T, 3, H, W)`` in [0, 1], exactly ``input_size`` -> ``(N, K)``
        logits. The model permutes to ``(N, C, T, H, W)`` internally (C = 6 with ``motion``).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        width: float = 1.0,
        input_size: tuple[int, int, int] = (16, 112, 112),
        dropout: float = 0.5,
        batch_norm: bool = False,
        mean: tuple[float, float, float] = (0.5, 0.5, 0.5),
        std: tuple[float, float, float] = (0.25, 0.25, 0.25),
        motion: bool = False,
    ):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        t, h, w = (int(s) for s in input_size)
        out_t, out_h, out_w = c3d_feature_shape((t, h, w))
        self.input_spec = InputSpec(frames=t, height=h, width=w, mean=tuple(mean), std=tuple(std))
        self.num_classes = int(num_classes)
        self.motion = bool(motion)

        layers: list[nn.Module] = []
        in_ch = 6 if self.motion else 3
        for _, channels, pool in _C3D_LAYERS:
            out_ch = scaled_channels(channels, width)
            layers.append(nn.Conv3d(in_ch, out_ch, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm3d(out_ch))
            layers.append(nn.ReLU(inplace=True))
            if pool is not None:
                kernel, padding = pool
                layers.append(nn.MaxPool3d(kernel_size=kernel, stride=kernel, padding=padding))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.flat_features = in_ch * out_t * out_h * out_w
        fc = scaled_channels(_C3D_FC, width)
        self.classifier = nn.Sequential(
            nn.Linear(self.flat_features, fc),  # fc6
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc, fc),  # fc7
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc, self.num_classes),  # fc8
        )
        self._init_weights()

    def _init_weights(self) -> None:
        """He initialisation (fan-out) for the convolutions and fc6/fc7, zero biases: without batch
        norm, PyTorch's default (smaller) initialisation shrinks the signal over eight layers and
        training from scratch stalls at chance for several epochs."""
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.classifier[-1].weight, std=0.01)  # fc8: near-uniform initial predictions

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        self.check_input(video, exact_frames=True)
        x = normalize_video(video, self.input_spec)
        if self.motion:
            x = with_frame_differences(x)
        x = x.permute(0, 2, 1, 3, 4)  # (N, C, T, H, W)
        return self.classifier(self.features(x).flatten(1))
