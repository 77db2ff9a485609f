"""Small shared helpers: atomic writes, seeding, eval mode and the progress display."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import queue
import random
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from vidshield.errors import OutputError
from vidshield.text import printable

if TYPE_CHECKING:
    import torch


def refuse_special_target(path: str | os.PathLike) -> None:
    """Raise :class:`OutputError` when ``path`` exists and is not a regular file: a symbolic link
    (outputs never follow links: the rename that makes a write atomic would replace the link
    itself), a device, a FIFO or a socket (a rename would replace the node with a file, and
    nothing would reach it). A missing path or a regular file passes."""
    path = Path(path)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise output_error(path, e) from None
    if stat.S_ISREG(mode):
        return
    if stat.S_ISLNK(mode):
        why = "it is a symbolic link (outputs never follow links; name the file itself, or - for stdout where offered)"
    elif stat.S_ISDIR(mode):
        why = "it is a folder"
    else:
        kind = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}
        why = f"it is {kind.get(stat.S_IFMT(mode), 'not a regular file')}, not a regular file"
    raise OutputError(f"cannot write {printable(path)}: {why}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename, so an
    interrupted run never leaves a half-written file. A target that exists and is not a regular
    file is refused (:func:`refuse_special_target`)."""
    path = Path(path)
    refuse_special_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    except OSError as e:
        raise output_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise output_error(path, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_writable(path: str | os.PathLike) -> Path:
    """Check, before any work, that ``path`` can be written by :func:`atomic_write_bytes`: its
    name fits the file system, it is not a folder, link, device, FIFO or socket
    (:func:`refuse_special_target`), and its folder exists (or can be created) and is writable.
    Creates nothing.

    Raises:
        OutputError: with the reason.
    """
    path = Path(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {printable(path)}: {printable(folder)} is not a folder")
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for part in path.relative_to(folder).parts if path.is_relative_to(folder) else (path.name,):
        if len(os.fsencode(part)) > name_max:
            raise OutputError(f"cannot write {printable(path)}: the name is longer than {name_max} bytes")
    refuse_special_target(path)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {printable(path)}: the folder {printable(folder)} is not writable")
    return path


def temp_prefix(path: Path) -> str:
    """Prefix of the temporary file next to ``path`` (short enough for any allowed name)."""
    return f".{path.name[:64]}."


def remove_stale_temp_files(folder: str | os.PathLike) -> int:
    """Delete the temporary files that an interrupted atomic write left in ``folder``
    (``.NAME.XXXX.tmp``, see :func:`temp_prefix`); returns how many. Call it when a resumable
    command starts on its output folder, before it writes anything."""
    removed = 0
    for p in Path(folder).glob(".*.tmp"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def output_error(path: str | os.PathLike, e: OSError) -> OutputError:
    """An :class:`OutputError` naming ``path`` and the file system's reason."""
    return OutputError(f"cannot write {printable(path)}: {e.strerror or e}")


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module with neither)."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    import torch

    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``with eval_mode(model):`` the module in eval mode inside the block; the train/eval mode of
    every submodule is restored afterwards (also on an exception)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, mode in modes:
            m.training = mode


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a ``torch.Generator`` seeded with ``seed``.
    Called from ``main`` functions, never at import time."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def start_up_without_gc() -> Iterator[None]:
    """``with start_up_without_gc():`` Python's cyclic garbage collector paused while a command
    imports its libraries and loads its models; on exit every object tracked then is frozen
    (``gc.freeze``), so later collections skip them. Importing torch makes about 220,000 objects;
    the full collections they set off took 0.2-0.3 s of a one-window ``scan``'s 2 s of CPU.
    Reference counting still frees what is dropped; the frozen objects (modules, classes, weights)
    live until the process exits anyway. A process that runs many commands (a test session) also
    keeps the cyclic garbage that is pending at each of those moments."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def fewer_torch_threads(reserved: int = 1) -> Iterator[int]:
    """``with fewer_torch_threads():`` torch's intra-op threads lowered (never raised) to the CPUs
    this process may use less ``reserved`` (at least 1), e.g. one left to a decoding thread: on two
    cores, a second intra-op thread competes with the decoder and spins while it waits. Restored
    on exit. Yields the thread count inside."""
    import torch

    before = torch.get_num_threads()
    inside = max(1, min(before, len(os.sched_getaffinity(0)) - reserved))
    torch.set_num_threads(inside)
    try:
        yield inside
    finally:
        torch.set_num_threads(before)


def prefetched(iterable: Iterable, depth: int = 2) -> Iterator:
    """Iterate ``iterable`` in a background thread, at most ``depth`` items ahead (a bounded
    producer / consumer queue): decoding overlaps the work on the items. Items come in order; an
    exception of the producer is raised here; leaving the loop early stops the producer and
    closes ``iterable``. Worth it where the producer releases the GIL (PyAV decodes and scales
    without it)."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in iterable:
                if not put((item, None)):
                    break
            else:
                put((end, None))
        except BaseException as e:  # handed to the consumer
            put((end, e))
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="vidshield-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = items.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
            del item  # not kept alive while the next one is awaited
    finally:
        stop.set()
        worker.join()


def progress_bar(*fields: str, disable: bool = False, transient: bool = True, lines: bool = False):
    """The one progress display of the commands and training loops: description, bar, done/total,
    the ``fields`` given (e.g. ``"loss {task.fields[loss]}"``), elapsed and remaining time.

    It is drawn on stderr, so it still shows while stdout is redirected to a file or a pipe, and
    never mixes into the results printed there. ``disable`` (``--json``, ``progress=False``) turns
    it off; ``transient`` clears it when done (and, when stderr is not a terminal, keeps it from
    writing anything there); a bar that is not transient leaves its final state on stderr. A
    :class:`rich.progress.Progress` (a context manager); with ``lines``, when stderr is not a
    terminal (a log, e.g. CI), a :class:`LineProgress` writing plain lines there instead.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *(TextColumn(f) for f in fields),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True)
    if lines and not disable and not console.is_terminal:
        return LineProgress(lambda line: print(line, file=sys.stderr, flush=True))
    # a transient bar on a file or pipe would leave only a blank line: it is left out there
    off = disable or (transient and not console.is_terminal)
    return Progress(*columns, console=console, disable=off, transient=transient)


class LineProgress:
    """The progress display for logs (:func:`progress_bar` with ``lines`` where stderr is not a
    terminal, e.g. CI): ``echo`` gets one plain line per task at its start, then at most one
    every ``every`` seconds and one when it completes; inside the ``with`` block, the running task's line is repeated every ``every`` seconds even without progress (a
    batch that takes a while still shows the run is alive). The subset of
    ``rich.progress.Progress`` the stages use (``add_task``, ``advance``, ``update``)."""

    def __init__(self, echo=print, *, every: float = 5.0):
        self.echo, self.every = echo, every
        self.tasks: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> LineProgress:
        self._beat = threading.Thread(target=self._heartbeat, name="vidshield-progress", daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                if self.tasks:
                    task = max(self.tasks)
                    t = self.tasks[task]
                    running = t["total"] is None or t["done"] < t["total"]
                    if running and time.monotonic() - t["shown"] >= self.every:
                        t["shown"] = time.monotonic()
                        self._show(task)

    def add_task(self, description: str, total=None, **_) -> int:
        with self._lock:
            task = len(self.tasks)
            self.tasks[task] = {"description": description, "total": total, "done": 0, "start": time.monotonic()}
            self.tasks[task]["shown"] = self.tasks[task]["start"]
            self._show(task)
        return task

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def update(self, task: int, *, advance: float = 0, completed=None, total=None, **_) -> None:
        with self._lock:
            self._update(task, advance, completed, total)

    def _update(self, task: int, advance, completed, total) -> None:
        t = self.tasks[task]
        t["total"] = t["total"] if total is None else total
        t["done"] = completed if completed is not None else t["done"] + advance
        now = time.monotonic()
        finished = t["total"] is not None and t["done"] >= t["total"]
        if finished or now - t["shown"] >= self.every:
            t["shown"] = now
            self._show(task)

    def _show(self, task: int) -> None:
        t = self.tasks[task]
        count = f"{t['done']:g}/{t['total']:g}" if t["total"] else f"{t['done']:g}"
        self.echo(f"  {t['description']}: {count} ({time.monotonic() - t['start']:.0f} s)")
