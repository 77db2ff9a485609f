"""Adversarial data sets on disk: one lossless video per clip plus ``manifest.json``.

Layout of a set folder::

    DIR/manifest.json          header (attack + config, model, data set, seed, version, command)
                               and one entry per finished clip
    DIR/clip_000000.mkv        adversarial clip, FFV1 (lossless: decodes to the exact pixels)
    DIR/...

Clips are quantised to 8 bits *before* the attack (so untouched frames stay bit-identical on
disk) and the adversarial result is quantised again before it is measured: the predictions and
norms in the manifest are those of exactly what the files hold. Each clip is written atomically
and the manifest is rewritten atomically after every clip, so an interrupted run loses no
finished clip; a rerun into the same folder skips the clips already listed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from vidshield import __version__
from vidshield.attacks.base import Attack, is_success, predict, resolve_target
from vidshield.attacks.metrics import perturbation_metrics
from vidshield.data.manifest import MANIFEST_NAME, read_manifest
from vidshield.errors import DataRootError, VidshieldError
from vidshield.utils import atomic_write_json, remove_stale_temp_files

__all__ = [
    "MANIFEST_NAME",
    "SET_FORMAT",
    "quantize",
    "clip_filename",
    "CLIP_FIELDS",
    "read_set_manifest",
    "write_adversarial_set",
    "load_adversarial_set",
    "set_summary",
]

SET_FORMAT = "vidshield-adversarial-set/1"
# Header fields that must match for a rerun to resume into an existing folder.
_RESUME_KEYS = ("attack", "attack_config", "model", "dataset", "seed")


def quantize(video: torch.Tensor) -> torch.Tensor:
    """Round a [0, 1] float video to the 8-bit grid (``round(255 x) / 255``), as a lossless
    file stores it."""
    return video.detach().mul(255.0).round().clamp(0, 255).div(255.0)


def clip_filename(index: int) -> str:
    """File name of the clip made from source item ``index``."""
    return f"clip_{index:06d}.mkv"


#: What every clip entry of an adversarial-set manifest holds, checked when a set is read.
CLIP_FIELDS = {
    "index": int,
    "label": int,
    "pred_before": int,
    "pred_after": int,
    "success": bool,
    "perturbed_frames": float,
    "l21": float,
    "linf": float,
    "mean_abs_255": float,
}


def read_set_manifest(folder: str | Path) -> dict:
    """Read ``folder/manifest.json`` of an adversarial set (:func:`vidshield.data.read_manifest`
    with this format and :data:`CLIP_FIELDS`)."""
    return read_manifest(folder, format=SET_FORMAT, fields=CLIP_FIELDS)


def set_summary(clips: Sequence[dict]) -> dict:
    """Counts and rates over manifest entries: clips, accuracy before/after, success rate,
    mean perturbed frames and mean norms."""
    n = len(clips)
    if n == 0:
        return {"clips": 0}

    def mean(key):
        return sum(float(c[key]) for c in clips) / n

    return {
        "clips": n,
        "accuracy_before": sum(c["pred_before"] == c["label"] for c in clips) / n,
        "accuracy_after": sum(c["pred_after"] == c["label"] for c in clips) / n,
        "success_rate": sum(bool(c["success"]) for c in clips) / n,
        "mean_perturbed_frames": mean("perturbed_frames"),
        "mean_l21": mean("l21"),
        "mean_linf": mean("linf"),
        "mean_abs_255": mean("mean_abs_255"),
    }


def _source_of(dataset, index: int) -> str | None:
    samples = getattr(dataset, "samples", None)
    if samples is not None:
        return str(samples[index][0])
    return None


def write_adversarial_set(
    out: str | Path,
    dataset,
    model: nn.Module,
    attack: Attack | None,
    *,
    header: dict,
    indices: Sequence[int] | None = None,
    target: int | None = None,
    seed: int = 0,
    fps: float = 25.0,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Attack every selected clip of ``dataset`` and store the results (resumable).

    Args:
        out: the set folder (created).
        dataset: items ``(video float (T, 3, H, W) in [0, 1], label int)``.
        model: the victim, used for the before/after predictions.
        attack: an :class:`Attack`, or None to export the clean clips in the same format.
        header: JSON fields describing the run; must include ``attack``, ``attack_config``,
            ``model``, ``dataset`` (resume refuses a folder whose header differs in those or seed).
        indices: data set items to process (default: all).
        target: target class for targeted attacks.
        seed: clip ``i`` is attacked with ``torch.Generator().manual_seed(seed * 1000003 + i)``,
            so a resumed run gives the same clips as an uninterrupted one.
        fps: frame rate written into the files.
        progress: called as ``progress(done, total)`` after each clip (including skipped ones).

    Returns:
        The final manifest dict.

    Raises:
        VidshieldError: ``out`` holds a set made with a different attack, model, data or seed.
    """
    from vidshield.io import write_video

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out)  # left by a run killed mid-write
    indices = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    manifest = {"format": SET_FORMAT, **header, "seed": seed, "vidshield_version": __version__, "clips": []}
    if (out / MANIFEST_NAME).is_file():
        old = read_set_manifest(out)
        for key in _RESUME_KEYS:
            if json.dumps(old.get(key), sort_keys=True) != json.dumps(manifest.get(key), sort_keys=True, default=str):
                raise VidshieldError(
                    f"{out} already holds a set made with a different {key} "
                    f"({old.get(key)!r} vs {manifest.get(key)!r}); use a new --out folder"
                )
        manifest["clips"] = old["clips"]
    done = {int(c["index"]) for c in manifest["clips"]}
    for count, i in enumerate(indices, 1):
        if i not in done:
            video, label = dataset[i]
            clean = quantize(video).unsqueeze(0)
            labels = torch.tensor([int(label)], dtype=torch.int64)
            if attack is None:
                adv = clean
            else:
                gen = torch.Generator().manual_seed(seed * 1000003 + i)
                adv = quantize(attack(clean, labels, target=target, generator=gen))
            before, after = predict(model, torch.cat([clean, adv])).cpu().tolist()
            t = resolve_target(target, 1, torch.device("cpu"))
            entry = {
                "index": i,
                "file": clip_filename(i),
                "source": _source_of(dataset, i),
                "label": int(label),
                "pred_before": before,
                "pred_after": after,
                "target": target,
                "success": bool(is_success(torch.tensor([after]), labels, t)[0]) if attack is not None else False,
                **perturbation_metrics(clean, adv)[0],
            }
            write_video(out / entry["file"], adv[0], fps=fps, lossless=True)
            manifest["clips"].append(entry)
            manifest["clips"].sort(key=lambda c: c["index"])
            manifest["summary"] = set_summary(manifest["clips"])
            atomic_write_json(out / MANIFEST_NAME, manifest)
            done.add(i)
        if progress is not None:
            progress(count, len(indices))
    manifest["summary"] = set_summary(manifest["clips"])
    atomic_write_json(out / MANIFEST_NAME, manifest)
    return manifest


def load_adversarial_set(folder: str | Path, *, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Load an adversarial (or clean) set written by :func:`write_adversarial_set`.

    Args:
        folder: the set folder.
        limit: load at most this many clips (in manifest order).

    Returns:
        ``(videos float32 (N, T, 3, H, W) in [0, 1], labels int64 (N,), manifest)``; clip ``k``
        is ``manifest["clips"][k]``.

    Raises:
        DataRootError: no manifest, a missing clip file, or clips of different sizes.
        InputFormatError: an invalid manifest.
    """
    from vidshield.io import read_video

    folder = Path(folder)
    manifest = read_set_manifest(folder)
    clips = manifest["clips"][:limit] if limit is not None else manifest["clips"]
    videos = []
    for c in clips:
        path = folder / c["file"]  # checked by read_set_manifest to lie inside folder
        if not path.is_file():
            raise DataRootError(f"{folder}: clip file {c['file']} listed in the manifest is missing")
        videos.append(read_video(path))
    if not videos:
        raise DataRootError(f"{folder}: the manifest lists no clips")
    shapes = {tuple(v.shape) for v in videos}
    if len(shapes) != 1:
        raise DataRootError(f"{folder}: clips have different shapes {sorted(shapes)}")
    labels = torch.tensor([int(c["label"]) for c in clips], dtype=torch.int64)
    return torch.stack(videos), labels, {**manifest, "clips": clips}
