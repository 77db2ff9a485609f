"""Video files as labelled clips: a folder-per-class tree, UCF101 with its official splits, and
UT-Interaction.

Every data set returns ``(video, label)``: ``float32 (T, 3, H, W)`` in [0, 1] and an ``int``, and
exposes ``classes`` (names in label order) and ``samples`` (``(path, label)`` pairs).

Decoding follows one recipe. Evaluation (``augment=False``): T frames sampled uniformly, the
short side scaled to the larger side of ``size``, the centre ``size`` crop. Training
(``augment=True``): the short side scaled to 8/7 of that, a random crop and a horizontal flip.
``sampling="random"`` picks one random frame in each of T equal segments instead of evenly
spaced frames; it decodes up to ``max_sequence_frames`` frames spread over the video once
(cached when ``cache`` is set) and samples from those.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vidshield.data.cache import FrameCache
from vidshield.data.sampling import SAMPLINGS, sample_indices
from vidshield.data.transforms import eval_short_side, train_short_side, train_transform
from vidshield.errors import DataRootError
from vidshield.io import VIDEO_EXTENSIONS, is_video_file, probe, read_frames
from vidshield.video import frames_to_tensor

__all__ = [
    "CLASS_LIST_FILE",
    "UT_INTERACTION_CLASSES",
    "VideoClipDataset",
    "VideoFolder",
    "UCF101",
    "UTInteraction",
    "UT_SET_SEQUENCES",
    "LosoFold",
    "loso_fold",
    "parse_folds",
    "default_data_root",
]

UT_INTERACTION_CLASSES = ("handshake", "hug", "kick", "point", "punch", "push")
DATA_ENV = "VIDSHIELD_DATA"
CLASS_LIST_FILE = "classes.txt"  # optional class order of a VideoFolder, one name per line
# data set name -> its folder inside a data root
_DATA_FOLDERS = {"ut-interaction": "ut-interaction", "ucf101": "UCF-101"}
_FOLDER_LAYOUT = "root/<class>/<clip> with clips ending in " + " ".join(VIDEO_EXTENSIONS)


def default_data_root(name: str) -> Path:
    """Folder of data set ``name`` (``"ut-interaction"`` or ``"ucf101"``).

    Looks in ``$VIDSHIELD_DATA/<folder>`` when ``VIDSHIELD_DATA`` is set, otherwise in
    ``../shared/data/<folder>`` next to the repository checkout.

    Raises:
        DataRootError: the folder does not exist (the message says where it looked).
    """
    if name not in _DATA_FOLDERS:
        raise ValueError(f"no default root for data set {name!r}; known: {sorted(_DATA_FOLDERS)}")
    folder = _DATA_FOLDERS[name]
    env = os.environ.get(DATA_ENV)
    if env:
        root = Path(env).expanduser() / folder
        if not root.is_dir():
            raise DataRootError(f"{DATA_ENV}={env!r} has no {folder}/ folder for data set {name!r} (looked for {root})")
        return root
    shared = Path(__file__).resolve().parents[3].parent / "shared" / "data" / folder
    if shared.is_dir():
        return shared
    raise DataRootError(
        f"no data root for {name!r}: set {DATA_ENV} to a folder holding {folder}/ or pass the root explicitly"
    )


class VideoClipDataset(Dataset):
    """Labelled video files decoded into clips; the base of the file data sets.

    Args:
        samples: ``(path, label)`` pairs.
        classes: class names in label order.
        frames: T, frames per clip.
        size: ``(H, W)`` of the output clips, or None to keep each video's own size (then
            ``augment`` is not available and clips of different videos differ in size).
        sampling: ``"uniform"`` (deterministic) or ``"random"`` (jittered, for training).
        augment: scale-then-random-crop and horizontal flip (training).
        transform: applied last, to the float ``(T, 3, H, W)`` clip.
        cache: folder of a :class:`FrameCache` for decoded frames, or None.
        max_sequence_frames: with ``sampling="random"``, how many frames spread over the video
            are decoded (and cached) to sample from (at least ``frames``).

    Randomness (``sampling="random"``, ``augment``) comes from torch's global RNG, which a
    DataLoader seeds per worker (see :func:`vidshield.data.make_loader`).
    """

    def __init__(
        self,
        samples: Sequence[tuple[str | os.PathLike, int]],
        classes: Sequence[str],
        *,
        frames: int,
        size: Sequence[int] | None = None,
        sampling: str = "uniform",
        augment: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        cache: str | os.PathLike | None = None,
        max_sequence_frames: int = 64,
    ):
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if size is not None and (len(size) != 2 or min(int(s) for s in size) < 1):
            raise ValueError(f"size must be (height, width) or None, got {size!r}")
        if augment and size is None:
            raise ValueError("augment=True needs a target size (height, width)")
        self.samples = [(str(p), int(label)) for p, label in samples]
        self.classes = list(classes)
        bad = [label for _, label in self.samples if not 0 <= label < len(self.classes)]
        if bad:
            raise ValueError(f"labels must lie in [0, {len(self.classes)}), found {bad[0]}")
        self.frames = int(frames)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.sampling = sampling
        self.augment = augment
        self.transform = transform
        self.cache = None if cache is None else FrameCache(cache)
        self.max_sequence_frames = max(int(max_sequence_frames), self.frames)
        if self.size is None:
            self._short_side, self._crop = None, None
        elif augment:
            self._short_side, self._crop = train_short_side(self.size), None
            self._augmentation = train_transform(self.size)
        else:
            self._short_side, self._crop = eval_short_side(self.size), self.size

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        """Label of every sample, in order."""
        return [label for _, label in self.samples]

    def _decode_spec(self) -> dict:
        spec = {"short_side": self._short_side, "crop": self._crop}
        if self.sampling == "uniform":
            return {"kind": "clip", "frames": self.frames, **spec}
        return {"kind": "sequence", "max_frames": self.max_sequence_frames, **spec}

    def _decode(self, path: str, spec: dict) -> torch.Tensor:
        """uint8 ``(n, h, w, 3)``: the T uniform frames, or the capped frame sequence."""
        geometry = {"short_side": spec["short_side"], "crop": spec["crop"]}
        if spec["kind"] == "clip":
            frames = read_frames(path, num_frames=spec["frames"], **geometry)
        else:
            available = probe(path).num_frames or 0
            if available > spec["max_frames"]:
                frames = read_frames(path, num_frames=spec["max_frames"], **geometry)
            else:
                frames = read_frames(path, **geometry)
        return torch.from_numpy(frames)

    def load_frames(self, index: int) -> torch.Tensor:
        """Decoded (or cached) uint8 ``(n, h, w, 3)`` frames of sample ``index``, before temporal
        sampling and augmentation."""
        path = self.samples[index][0]
        spec = self._decode_spec()
        if self.cache is None:
            return self._decode(path, spec)
        return self.cache.get_or_create(path, spec, lambda: self._decode(path, spec))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} videos")
        index = index % len(self)
        frames = self.load_frames(index)
        if self.sampling == "random":
            frames = frames[sample_indices(frames.shape[0], self.frames, sampling="random")]
        video = frames_to_tensor(frames)
        if self.augment:
            video = self._augmentation(video)
        if self.transform is not None:
            video = self.transform(video)
        return video, self.samples[index][1]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} videos, {len(self.classes)} classes, frames={self.frames}, "
            f"size={self.size}, sampling={self.sampling!r}, augment={self.augment})"
        )


class VideoFolder(VideoClipDataset):
    """Videos in a folder-per-class tree: ``root/<class>/<clip>.avi`` (or any of
    :data:`vidshield.io.VIDEO_EXTENSIONS`).

    Args:
        root: the tree's root.
        classes: class names in label order. Default: the lines of ``root/classes.txt`` when
            that file exists (as :func:`export_synthetic` writes), else the sorted names of the
            sub-folders that hold videos. Listed classes must all exist as folders.
        frames, size, sampling, augment, transform, cache: see :class:`VideoClipDataset`.

    Raises:
        DataRootError: ``root`` is missing, a given class folder is missing, or no video is found.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        frames: int,
        size: Sequence[int] | None = None,
        classes: Sequence[str] | None = None,
        sampling: str = "uniform",
        augment: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        cache: str | os.PathLike | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataRootError(f"video folder {str(self.root)!r} does not exist; expected {_FOLDER_LAYOUT}")
        class_file = self.root / CLASS_LIST_FILE
        if classes is None and class_file.is_file():
            classes = [line.strip() for line in class_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        if classes is None:
            folders = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
            classes = [p.name for p in folders if any(is_video_file(f) for f in p.iterdir())]
        else:
            missing = [c for c in classes if not (self.root / c).is_dir()]
            if missing:
                raise DataRootError(
                    f"class folders missing in {str(self.root)!r}: {missing[:5]}; expected {_FOLDER_LAYOUT}"
                )
        samples = [
            (path, label)
            for label, name in enumerate(classes)
            for path in sorted(p for p in (self.root / name).iterdir() if is_video_file(p))
        ]
        if not samples:
            raise DataRootError(f"no videos found in {str(self.root)!r}; expected {_FOLDER_LAYOUT}")
        super().__init__(
            samples, classes, frames=frames, size=size, sampling=sampling, augment=augment,
            transform=transform, cache=cache,
        )  # fmt: skip


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-empty lines of a split file with their 1-based numbers (handles CRLF)."""
    if not path.is_file():
        raise DataRootError(f"UCF101 split file {str(path)!r} is missing")
    text = path.read_text(encoding="utf-8", errors="replace")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


class UCF101(VideoClipDataset):
    """UCF101 in its official layout, with the official train/test splits.

    Layout::

        UCF-101/<Class>/v_<Class>_gXX_cYY.avi
        ucfTrainTestlist/classInd.txt              "1 ApplyEyeMakeup"
        ucfTrainTestlist/trainlist0{1,2,3}.txt     "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
        ucfTrainTestlist/testlist0{1,2,3}.txt      "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"

    Args:
        root: the ``UCF-101`` folder (or a folder holding ``UCF-101/``).
        fold: official split 1, 2 or 3.
        split: ``"train"`` or ``"test"``.
        splits_dir: folder of the split files; default ``root/ucfTrainTestlist`` or, if absent,
            ``root/../ucfTrainTestlist``.
        frames, size, sampling, augment, transform, cache: see :class:`VideoClipDataset`.

    Labels are ``classInd`` index - 1. A listed path is matched case-insensitively inside its
    class folder when it is not found as written (the official lists spell one class
    ``HandStandPushups`` where the files say ``HandstandPushups``).

    Raises:
        DataRootError: missing root, split file or listed video; a malformed split line; a
            train label that disagrees with its class folder.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        fold: int = 1,
        split: str = "train",
        splits_dir: str | os.PathLike | None = None,
        frames: int = 16,
        size: Sequence[int] | None = (112, 112),
        sampling: str = "uniform",
        augment: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        cache: str | os.PathLike | None = None,
    ):
        if fold not in (1, 2, 3):
            raise ValueError(f"UCF101 fold must be 1, 2 or 3, got {fold}")
        if split not in ("train", "test"):
            raise ValueError(f"UCF101 split must be 'train' or 'test', got {split!r}")
        root = Path(root)
        if (root / "UCF-101").is_dir():
            root = root / "UCF-101"
        if not root.is_dir():
            raise DataRootError(
                f"UCF101 root {str(root)!r} does not exist; expected UCF-101/<Class>/v_<Class>_gXX_cYY.avi"
            )
        if splits_dir is None:
            candidates = [root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist"]
            splits_dir = next((c for c in candidates if c.is_dir()), None)
            if splits_dir is None:
                raise DataRootError(
                    f"UCF101 split folder not found (looked in {[str(c) for c in candidates]}); "
                    "pass splits_dir= the folder holding classInd.txt, trainlist01.txt, testlist01.txt"
                )
        self.root, self.splits_dir = root, Path(splits_dir)
        self.fold, self.split = fold, split
        self._listings: dict[Path, list[str]] = {}

        classes = self._parse_class_index(self.splits_dir / "classInd.txt")
        label_of = {name.lower(): label for label, name in enumerate(classes)}
        list_file = self.splits_dir / f"{split}list0{fold}.txt"
        samples, missing = [], []
        for number, line in _read_lines(list_file):
            parts = line.split()
            rel = parts[0].replace("\\", "/")
            folder = rel.split("/")[0]
            where = f"{list_file}:{number}"
            if "/" not in rel or folder.lower() not in label_of:
                raise DataRootError(f"{where}: {rel!r} is not <Class>/<clip> with a class of classInd.txt")
            label = label_of[folder.lower()]
            if split == "train":
                if len(parts) != 2 or not parts[1].isdigit():
                    raise DataRootError(f"{where}: expected '<Class>/<clip>.avi <label>', got {line!r}")
                if int(parts[1]) - 1 != label:
                    raise DataRootError(f"{where}: label {parts[1]} disagrees with class folder {folder!r}")
            path = self._resolve(rel)
            if path is None:
                missing.append(rel)
            else:
                samples.append((path, label))
        if missing:
            raise DataRootError(
                f"{len(missing)} videos listed in {str(list_file)!r} are missing under {str(root)!r}, "
                f"e.g. {missing[:3]}"
            )
        if not samples:
            raise DataRootError(f"split file {str(list_file)!r} lists no videos")
        super().__init__(
            samples, classes, frames=frames, size=size, sampling=sampling, augment=augment,
            transform=transform, cache=cache,
        )  # fmt: skip

    @staticmethod
    def _parse_class_index(path: Path) -> list[str]:
        entries = []
        for number, line in _read_lines(path):
            parts = line.split()
            if len(parts) != 2 or not parts[0].isdigit():
                raise DataRootError(f"{path}:{number}: expected '<index> <ClassName>', got {line!r}")
            entries.append((int(parts[0]), parts[1]))
        if sorted(i for i, _ in entries) != list(range(1, len(entries) + 1)):
            raise DataRootError(f"{path}: class indices must be 1..{len(entries)}, each once")
        return [name for _, name in sorted(entries)]

    def _resolve(self, rel: str) -> Path | None:
        path = self.root / rel
        if path.is_file():
            return path
        folder_name, file_name = rel.split("/", 1)
        folders = [d for d in self._listing(self.root) if d.lower() == folder_name.lower()]
        for folder in folders:
            match = [f for f in self._listing(self.root / folder) if f.lower() == file_name.lower()]
            if match:
                return self.root / folder / match[0]
        return None

    def _listing(self, folder: Path) -> list[str]:
        if folder not in self._listings:
            self._listings[folder] = sorted(os.listdir(folder)) if folder.is_dir() else []
        return self._listings[folder]


# UT-Interaction's two sets and the sequences each holds (the leave-one-sequence-out folds)
UT_SET_SEQUENCES = {1: tuple(range(1, 11)), 2: tuple(range(11, 21))}


@dataclass(frozen=True)
class LosoFold:
    """One leave-one-sequence-out fold of UT-Interaction: indices into the data set of the fold's set.

    ``fold`` is the test sequence (1-20); ``val_sequence`` the training sequence held out for model
    selection (the next one of the same set, cyclically); ``train`` the other 8 sequences.
    """

    fold: int
    set: int
    test_sequence: int
    val_sequence: int
    train_sequences: tuple[int, ...]
    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]


def loso_fold(sequences: Sequence[int], fold: int) -> LosoFold:
    """Split one UT-Interaction set's clips for leave-one-sequence-out fold ``fold``.

    Args:
        sequences: the sequence number of every clip of the set holding ``fold`` (set1: 1-10,
            set2: 11-20), e.g. ``UTInteraction(...).sequences`` or ``ClipSet(...).sequences``.
        fold: the test sequence, 1-20.

    Returns:
        A :class:`LosoFold`: test = the clips of sequence ``fold``, validation = those of the next
        sequence of the set (10 -> 1, 20 -> 11), train = the rest; disjoint, covering the set.

    Raises:
        ValueError: ``fold`` outside 1-20. DataRootError: ``sequences`` are not all of the fold's
            set, or the test or validation sequence has no clip.
    """
    set_id = next((k for k, seqs in UT_SET_SEQUENCES.items() if fold in seqs), None)
    if set_id is None:
        raise ValueError(f"a UT-Interaction fold is a sequence number 1-20, got {fold}")
    members = UT_SET_SEQUENCES[set_id]
    outside = sorted({int(s) for s in sequences} - set(members))
    if outside:
        raise DataRootError(
            f"fold {fold} is in set{set_id} (sequences {members[0]}-{members[-1]}) but clips of sequences {outside[:5]} were given"
        )
    val_sequence = members[(members.index(fold) + 1) % len(members)]
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for i, s in enumerate(sequences):
        parts["test" if s == fold else "val" if s == val_sequence else "train"].append(i)
    for name, seq in (("test", fold), ("val", val_sequence)):
        if not parts[name]:
            raise DataRootError(f"fold {fold}: no clip of sequence {seq} (its {name} sequence) in set{set_id}")
    return LosoFold(
        fold=fold,
        set=set_id,
        test_sequence=fold,
        val_sequence=val_sequence,
        train_sequences=tuple(s for s in members if s not in (fold, val_sequence)),
        train=tuple(parts["train"]),
        val=tuple(parts["val"]),
        test=tuple(parts["test"]),
    )


def parse_folds(text: str) -> list[int]:
    """Fold numbers from ``"3"``, ``"1-10"``, ``"1,4,11-13"``, ``"set1"``, ``"set2"`` or ``"all"``
    (1-20), sorted, each once.

    Raises:
        ValueError: anything else, or a fold outside 1-20.
    """
    named = {"all": range(1, 21), **{f"set{k}": v for k, v in UT_SET_SEQUENCES.items()}}
    folds: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if part.lower() in named:
            folds.update(named[part.lower()])
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None:
            raise ValueError(f"folds must look like 3, 1-10, 1,4,11-13, set1, set2 or all; got {text!r}")
        lo, hi = int(match.group(1)), int(match.group(2) or match.group(1))
        if not 1 <= lo <= hi <= 20:
            raise ValueError(f"UT-Interaction folds are sequences 1-20; got {part!r}")
        folds.update(range(lo, hi + 1))
    return sorted(folds)


_UT_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)\.avi$", re.IGNORECASE)


class UTInteraction(VideoClipDataset):
    """The segmented UT-Interaction clips (6 classes): ``set1`` = train, ``set2`` = test.

    Layout: ``root/set{1,2}/<class>/<clip>_<sequence>_<label>.avi`` with classes (label order)
    handshake, hug, kick, point, punch, push. ``sequences`` holds each sample's sequence number
    (for the leave-one-sequence-out folds, :func:`loso_fold`).

    Args:
        root: the ``ut-interaction`` folder.
        split: ``"train"`` (set1) or ``"test"`` (set2).
        frames, size, sampling, augment, transform, cache: see :class:`VideoClipDataset`.

    Raises:
        DataRootError: missing set or class folder, no clips, a file name not in the official
            form, or a label in the name that disagrees with the class folder.
    """

    SETS = {"train": "set1", "test": "set2"}

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        split: str = "train",
        frames: int = 16,
        size: Sequence[int] | None = (112, 112),
        sampling: str = "uniform",
        augment: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        cache: str | os.PathLike | None = None,
    ):
        if split not in self.SETS:
            raise ValueError(f"UT-Interaction split must be 'train' (set1) or 'test' (set2), got {split!r}")
        self.root, self.split = Path(root), split
        set_dir = self.root / self.SETS[split]
        layout = "root/set1|set2/<class>/<clip>_<sequence>_<label>.avi"
        if not set_dir.is_dir():
            raise DataRootError(f"UT-Interaction folder {str(set_dir)!r} does not exist; expected {layout}")
        samples, self.sequences = [], []
        for label, name in enumerate(UT_INTERACTION_CLASSES):
            class_dir = set_dir / name
            if not class_dir.is_dir():
                raise DataRootError(f"UT-Interaction class folder {str(class_dir)!r} is missing; expected {layout}")
            for path in sorted((p for p in class_dir.iterdir() if is_video_file(p)), key=_natural_key):
                match = _UT_NAME.match(path.name)
                if match is None:
                    raise DataRootError(f"{str(path)!r} is not named <clip>_<sequence>_<label>.avi")
                if int(match.group(3)) != label:
                    raise DataRootError(
                        f"{str(path)!r} has label {match.group(3)} in its name but lies in {name!r} (label {label})"
                    )
                samples.append((path, label))
                self.sequences.append(int(match.group(2)))
        if not samples:
            raise DataRootError(f"no clips found in {str(set_dir)!r}; expected {layout}")
        super().__init__(
            samples, UT_INTERACTION_CLASSES, frames=frames, size=size, sampling=sampling, augment=augment,
            transform=transform, cache=cache,
        )  # fmt: skip


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]
