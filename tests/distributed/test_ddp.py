"""Distributed training on 2 CPU processes (gloo) equals one process with the same global batch
(classifier, ComDefend, distilled detector), and its rank-0 checkpoints resume on another number
of processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vidshield import ddp
from vidshield.checkpoint import last_state_path, load_checkpoint
from vidshield.defenses.spatial.training import train_comdefend
from vidshield.detection.train_detector import train_detector
from vidshield.models import create_model
from vidshield.models.training import train_classifier

# 9 clips in global batches of 4: 4 + 4 + 1, so the last batch leaves process 1 without a share.
NUM_CLIPS, BATCH = 9, 4


class Interrupted(Exception):
    pass


class Clips(torch.utils.data.Dataset):
    """Random test-c3d clips; raises :class:`Interrupted` on read number ``fail_at`` (a crash)."""

    def __init__(self, fail_at: int | None = None):
        g = torch.Generator().manual_seed(0)
        self.videos = torch.rand(NUM_CLIPS, 16, 3, 32, 32, generator=g)
        self.labels = torch.randint(3, (NUM_CLIPS,), generator=g)
        self.reads, self.fail_at = 0, fail_at

    def __len__(self):
        return NUM_CLIPS

    def __getitem__(self, i):
        self.reads += 1
        if self.reads == self.fail_at:
            raise Interrupted(f"read {self.reads}")
        return self.videos[i], int(self.labels[i])


def _train_classifier(out, *, fail_at=None, resume=False):
    torch.manual_seed(0)
    # No BatchNorm (PyTorch has no SyncBatchNorm on CPUs) and no dropout: a deterministic model.
    model = create_model("test-c3d", num_classes=3, batch_norm=False, dropout=0.0)
    train_classifier(model, Clips(fail_at), epochs=2, out=out, batch_size=BATCH, lr=3e-3, resume=resume, progress=False)


def _train_detector(out):
    torch.manual_seed(1)
    teacher = create_model("test-c3d", num_classes=3).eval()
    torch.manual_seed(0)
    student = create_model("test-lrcn", num_classes=3, input_size=(16, 24, 24))  # its own 24x24 view
    # BatchNorm out (PyTorch has no SyncBatchNorm on CPUs), so the run does not depend on the split.
    body = student.cnn.body
    student.cnn.body = torch.nn.Sequential(
        *(torch.nn.Identity() if isinstance(m, torch.nn.BatchNorm2d) else m for m in body)
    )
    train_detector(
        student, teacher, Clips(), out=out, epochs=2, batch_size=BATCH, lr=3e-3, use_labels=True, classifier_ref="c",
        progress=False,
    )  # fmt: skip


def _train_comdefend(out, *, steps, resume=False):
    frames = torch.rand(6, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    train_comdefend(
        frames, val_source=frames[:2], steps=steps, batch_size=5, crop=8, amp=False, out=out, resume=resume,
        val_every=2, val_crops=4,
    )  # fmt: skip


def _worker(rank: int, world_size: int, port: int, job: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        assert ddp.world() == ddp.World(rank, world_size)
        if job == "classifier, interrupted in epoch 2":
            try:
                _train_classifier(out, fail_at=7)  # each process reads 5 clips in epoch 1
            except Interrupted:
                return
            raise AssertionError("the run was not interrupted")
        if job == "detector":
            _train_detector(out)
        else:
            _train_comdefend(out, steps=4, resume=True)
    finally:
        dist.destroy_process_group()


def _spawn(job: str, out) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(2, port, job, str(out)), nprocs=2, join=True)


def _tensors(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)[0]


def _assert_close(a: dict, b: dict, *, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=atol, atol=atol, msg=k)


def test_share_splits_a_global_batch_contiguously():
    shares = [ddp.share(9, ddp.World(r, 4)) for r in range(4)]
    assert shares == [(0, 3), (3, 5), (5, 7), (7, 9)]
    batches = ddp.ShardedBatches([[5, 1, 7, 3], [8]], ddp.World(1, 2))
    assert list(batches) == [[7, 3], [8]]  # no share of [8]: trains on it with loss scale 0
    assert batches.weights == [(2, 1.0), (0, 0.0)]


def test_classifier_on_two_processes_resumes_on_one_and_equals_one_process(tmp_path):
    single = tmp_path / "single"
    _train_classifier(single)
    both = tmp_path / "ddp"
    _spawn("classifier, interrupted in epoch 2", both)
    _, meta = load_checkpoint(last_state_path(both))
    assert meta["epoch"] == 1 and meta["settings"]["processes"] == 2
    _train_classifier(both, resume=True)  # epoch 2 on one process
    # Summing per-process means reorders float additions, and Adam turns that rounding of
    # near-zero gradients into differences of ~1e-6 on some weights; a step moves a weight by up
    # to lr = 3e-3, and a global batch split the wrong way ends ~1e-4 off.
    _assert_close(_tensors(last_state_path(both)), _tensors(last_state_path(single)), atol=2e-5)
    history = json.loads(last_state_path(both).with_suffix(".json").read_text())["history"]
    reference = json.loads(last_state_path(single).with_suffix(".json").read_text())["history"]
    assert [h["train_loss"] for h in history] == pytest.approx([h["train_loss"] for h in reference], rel=1e-5)


def test_detector_distilled_on_two_processes_equals_one_process(tmp_path):
    single = tmp_path / "single"
    _train_detector(single)
    both = tmp_path / "ddp"
    _spawn("detector", both)
    # As for the classifier: float rounding of the summed shares, amplified by Adam (observed below 1e-5).
    _assert_close(_tensors(last_state_path(both)), _tensors(last_state_path(single)), atol=2e-5)
    history = json.loads(last_state_path(both).with_suffix(".json").read_text())["history"]
    reference = json.loads(last_state_path(single).with_suffix(".json").read_text())["history"]
    for got, want in zip(history, reference, strict=True):
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-5)
        assert got["train_frame_agreement"] == want["train_frame_agreement"]


def test_comdefend_resumed_on_two_processes_equals_one_process(tmp_path):
    single = tmp_path / "single"
    _train_comdefend(single, steps=4)
    both = tmp_path / "ddp"
    _train_comdefend(both, steps=2)  # steps 1-2 on one process, steps 3-4 on two
    _spawn("comdefend", both)
    # Observed: ~1e-8 apart. Steps 3-4 move the weights by ~2e-3; the wrong rows of the training
    # noise on process 1 end ~1e-5 off (Adam's first steps move by about lr whatever the gradient).
    _assert_close(_tensors(last_state_path(both)), _tensors(last_state_path(single)), atol=1e-6)


def test_torchrun_train_comdefend_cli(tmp_path):
    """``torchrun -m vidshield train-comdefend`` on 2 CPU processes: one checkpoint, one summary."""
    frames = tmp_path / "frames.safetensors"
    from vidshield.defenses.spatial.training import FrameCropSampler

    FrameCropSampler([torch.randint(0, 256, (8, 24, 24, 3), dtype=torch.uint8)]).save(frames)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "vidshield", "train-comdefend", "--frames-file", str(frames), "--steps", "2", "--batch-size", "4",
        "--crop", "8", "--val-every", "2", "--val-crops", "4", "--no-amp", "--device", "cpu",
        "--out", str(tmp_path / "cd"), "--json",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["step"] == 2 and summary["weights"] == str(tmp_path / "cd.safetensors")
    assert (tmp_path / "cd.safetensors").is_file() and (tmp_path / "cd-last.safetensors").is_file()
