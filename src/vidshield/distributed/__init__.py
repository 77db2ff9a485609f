"""Beyond one process: corpus scans on a local process pool or on Ray.

- :mod:`vidshield.distributed.corpus`: video sources, content and settings hashes, one row per
  video (:func:`~vidshield.distributed.corpus.scan_one`), the resumable result store, and
  :func:`~vidshield.distributed.corpus.scan_corpus` which runs an engine over a corpus.
- :mod:`vidshield.distributed.local`: the local engine (worker processes, each loading the models once).
- :mod:`vidshield.distributed.ray_engine`: the Ray engine (CPU decode tasks, pipeline actors);
  needs the ``distributed`` extra.

The torch.distributed helpers of the training loops (``torchrun``) are :mod:`vidshield.ddp`,
below the models in the layering. Nothing heavy is imported here: Ray is imported only when the
Ray engine runs.
"""
