"""vidshield: detect adversarial videos by temporal consistency and purify them.

Implements "Identifying and Resisting Adversarial Videos Using Temporal Consistency"
(Jia, Wei, Cao, arXiv 1909.04837): per-frame labels of a CNN+LSTM with its recurrence removed
give an exception index alpha; videos are routed clean / sparse / dense, and sparse attacks are
undone by a temporal (motion-compensated, integer-DCT) defense, dense ones by ComDefend.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vidshield")
except PackageNotFoundError:  # running from src/ without installing (e.g. on the GPU machine)
    __version__ = "0.1.0"
