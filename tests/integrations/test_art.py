"""ART interop: our defenses as ART preprocessors give the same PGD as the native BPDA path; ART's
attacks run on a wrapped classifier; the detector answers ART's EvasionDetector calls."""

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("art")

from art.attacks.evasion import FrameSaliencyAttack, ProjectedGradientDescent
from tests.detection.fakes import MeanColourClassifier, video_from_labels

from vidshield.attacks.pgd import pgd_attack
from vidshield.data import SyntheticActions, synthetic_split_seed
from vidshield.defenses.spatial import SpatialDefense
from vidshield.defenses.spatial.comdefend import ComDefend
from vidshield.defenses.temporal import TemporalDefense
from vidshield.detection import TemporalConsistencyDetector
from vidshield.integrations.art import (
    SpatialDefensePreprocessor,
    TemporalConsistencyEvasionDetector,
    TemporalDefensePreprocessor,
    as_art_classifier,
)
from vidshield.models import create_model, load_model


class Defended(nn.Module):
    """The native adaptive path: the classifier behind ``purify`` (a defense's ``bpda``)."""

    def __init__(self, model, purify):
        super().__init__()
        self.model, self.purify = model, purify

    def forward(self, x):
        return self.model(self.purify(x))


def clips(n, size, frames=16):
    data = SyntheticActions(n, frames=frames, height=size, width=size, seed=synthetic_split_seed(0, "test"))
    return torch.stack([data[i][0] for i in range(n)]), torch.tensor([data[i][1] for i in range(n)])


def art_pgd(classifier, x, y, *, eps, steps, k):
    attack = ProjectedGradientDescent(
        classifier, norm=np.inf, eps=eps, eps_step=eps / 4, max_iter=steps, num_random_init=0,
        batch_size=x.shape[0], verbose=False,
    )  # fmt: skip
    return torch.from_numpy(attack.generate(x.numpy(), y=np.eye(k)[y.numpy()]))


def compare(model, x, y, pre, purify, *, eps, steps):
    native = pgd_attack(Defended(model, purify), x, y, eps=eps, steps=steps, random_start=False)
    art_clf = as_art_classifier(model, defenses=[pre])
    ours = art_pgd(art_clf, x, y, eps=eps, steps=steps, k=model.num_classes)
    with torch.no_grad():
        acc_native = int((Defended(model, purify)(native).argmax(-1) == y).sum())
    acc_art = int((art_clf.predict(ours.numpy()).argmax(-1) == y.numpy()).sum())
    return native, ours, acc_native, acc_art


def test_art_pgd_through_the_temporal_defense_matches_the_native_path():
    """The shipped CNN+LSTM, 8 synthetic test clips, frames 0, 5, 10, 15 rebuilt, PGD 4/255, 5
    steps: the same adversarial accuracy (measured: 7 of 8), and the same adversarial videos."""
    model = load_model("synthetic-lrcn")
    x, y = clips(8, 64)
    frames = [0, 5, 10, 15]
    mask = torch.zeros(8, 16, dtype=torch.bool)
    mask[:, frames] = True
    defense = TemporalDefense(qp=36)
    pre = TemporalDefensePreprocessor(defense, frames=frames)
    native, ours, acc_native, acc_art = compare(
        model, x, y, pre, lambda v: defense.bpda(v, polluted=mask), eps=4 / 255, steps=5
    )
    assert abs(acc_native - acc_art) <= 1 and acc_native < 8  # the attack changed something
    assert (ours - native).abs().max() < 1e-6 and (ours - x).abs().max() <= 4 / 255 + 1e-6
    # the preprocessor's value is the defense's: unmarked frames untouched, marked ones rebuilt
    out, _ = pre.forward(x[:2])
    assert (out - defense(x[:2], polluted=mask[:2])).abs().max() < 1e-6  # x + (defended - x), in float
    assert torch.equal(pre.estimate_forward(x[:2]), x[:2])  # identity surrogate


def test_art_pgd_through_the_spatial_defense_matches_the_native_path():
    torch.manual_seed(0)
    model = create_model("test-lrcn", num_classes=10, input_size=(8, 16, 16)).eval()
    defense = SpatialDefense(model=ComDefend().eval())
    x, _ = clips(2, 16, frames=8)
    y = model(x).argmax(-1).detach()  # the model's own labels: clean accuracy 2 of 2
    native, ours, acc_native, acc_art = compare(
        model, x, y, SpatialDefensePreprocessor(defense), defense.bpda, eps=8 / 255, steps=2
    )
    assert abs(acc_native - acc_art) <= 1
    assert (ours - native).abs().max() < 1e-5


def test_frame_saliency_attack_runs_through_the_detector_driven_temporal_defense():
    model = load_model("synthetic-lrcn")
    x, y = clips(3, 64)
    detector = TemporalConsistencyDetector(model)
    defense = TemporalDefense(qp=36)
    calls = []
    original = defense.forward
    defense.forward = lambda video, **kw: calls.append(kw.get("polluted")) or original(video, **kw)
    pre = TemporalDefensePreprocessor(defense, detector=detector)
    art_clf = as_art_classifier(model, defenses=[pre])
    pgd = ProjectedGradientDescent(art_clf, eps=8 / 255, eps_step=2 / 255, max_iter=3, verbose=False)
    attack = FrameSaliencyAttack(art_clf, pgd, method="iterative_saliency", frame_index=1, verbose=False)
    adv = attack.generate(x.numpy(), y=np.eye(10)[y.numpy()])
    assert adv.shape == x.shape and adv.dtype == np.float32
    assert np.abs(adv - x.numpy()).max() <= 8 / 255 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert np.abs(adv - x.numpy()).max() > 1 / 255  # the attack changed pixels
    # its predictions went through the detector-driven defense: the detector's marks were passed on
    assert calls and all(p is not None for p in calls)


def test_detector_as_an_art_evasion_detector():
    """Colour-coded clips with alpha 0, 1/8, 2/8: at the paper's gamma1 (0.175) only the last is
    adversarial; fit on the first two with a 50 % budget puts gamma1 just above 0 (k = ceil(3 * 0.5)
    = 2: s_(2) = 1/8, so 1/8 stays clean and 2/8 fires)."""
    det = TemporalConsistencyEvasionDetector(TemporalConsistencyDetector(MeanColourClassifier()))
    x = torch.stack(
        [video_from_labels(s, 8) for s in ([0] * 8, [0, 0, 1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 2, 0, 0])]
    ).numpy()
    report, flagged = det.detect(x)
    assert report["alpha"] == [0.0, 0.125, 0.25] and report["exception_frames"][2] == [1, 5]
    assert flagged.tolist() == [False, False, True]
    det.fit(x, y=np.array([0, 0, 1]), target_fpr=0.5)
    assert det.detector.config.target_fpr == 0.5 and det.detector.gamma1 == np.nextafter(0.125, 1)
    assert det.detect(x)[1].tolist() == [False, False, True]
