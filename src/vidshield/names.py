"""Names the command line offers as defaults and choices, in a module that imports nothing, so
``vidshield --help`` and ``vidshield COMMAND --help`` need neither torch nor a model. Each name is
re-exported by the module that gives it meaning (the detector, the data sets, the routing)."""

from __future__ import annotations

#: The default detection network: the UT-Interaction CNN+LSTM (6 action classes), used with the
#: config shipped beside it (``zoo/ut-lrcn.detector.json``: a feature_spike threshold for a 1 %
#: window false-alarm budget on clean real footage, and its in-domain profile).
DEFAULT_MODEL = "ut-lrcn"

#: The data sets :func:`vidshield.models.datasets.dataset_for_spec` builds.
DATASET_NAMES = ("synthetic", "ut-interaction", "ucf101", "folder", "clips")
#: How `vidshield train` splits a data set: a fixed train/test split, or UT-Interaction's
#: leave-one-sequence-out folds.
TRAINING_PROTOCOLS = ("split", "loso")

#: Frames the temporal defense rebuilds (:func:`vidshield.routing.polluted_mask`).
POLLUTED_RULES = ("exceptions", "minority", "exceptions+ends")

#: The defenses of :data:`vidshield.defenses.DEFENSES` (kept equal to the registry by a test), the
#: choices of ``vidshield defend --method`` besides ``auto``.
DEFENSE_NAMES = ("bitdepth", "h264", "jpeg", "median", "spatial", "temporal")
