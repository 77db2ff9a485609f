"""Beyond one process: corpus scans on a local process pool or on Ray, and torch.distributed
helpers for training with ``torchrun``.

- :mod:`vidshield.distributed.corpus`: video sources, content and settings hashes, one row per
  video (:func:`~vidshield.distributed.corpus.scan_one`), the resumable result store, and
  :func:`~vidshield.distributed.corpus.scan_corpus` which runs an engine over a corpus.
- :mod:`vidshield.distributed.local`: the local engine (worker processes, each loading the models once).
- :mod:`vidshield.distributed.ray_engine`: the Ray engine (CPU decode tasks, pipeline actors);
  needs the ``distributed`` extra.
- :mod:`vidshield.distributed.ddp`: process-group set-up, DistributedDataParallel wrapping and
  global-batch sharding for the training loops.

Nothing heavy is imported here: Ray is imported only when the Ray engine runs.
"""
