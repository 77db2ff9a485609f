import pytest
import torch

from vidshield.models import LRCN, create_model


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_model("test-lrcn", num_classes=5).eval()


def test_shapes_any_length(model, rng):
    video = torch.rand(2, 16, 3, 32, 32, generator=rng)
    assert model.has_frame_logits
    assert model(video).shape == (2, 5)
    assert model.frame_logits(video).shape == (2, 16, 5)
    assert model.frame_logits(video[:, :5]).shape == (2, 5, 5)
    with pytest.raises(ValueError, match="32x32"):
        model(torch.rand(1, 16, 3, 24, 32, generator=rng))


def test_frame_logits_equal_each_frame_through_a_zero_state_lstm_cell(model, rng):
    video = torch.rand(2, 6, 3, 32, 32, generator=rng)
    with torch.no_grad():
        frames = model.frame_logits(video)
        # Each frame alone (a one-frame video) gives the same logits.
        for t in range(6):
            torch.testing.assert_close(
                frames[:, t], model.frame_logits(video[:, t : t + 1])[:, 0], rtol=1e-5, atol=1e-6
            )
        # And they equal an LSTM cell written out by hand with h0 = c0 = 0.
        features = model.frame_features(video)
        lstm = model.lstm
        gates = features @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + lstm.bias_hh_l0
        i, _f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        torch.testing.assert_close(frames, model.classifier(h), rtol=1e-5, atol=1e-6)


def test_recurrence_removed_path_differs_from_the_recurrent_one(model, rng):
    video = torch.rand(1, 8, 3, 32, 32, generator=rng)
    changed = video.clone()
    changed[:, 0] = torch.rand(3, 32, 32, generator=rng)
    with torch.no_grad():
        # Per-frame labels of frames 1.. ignore frame 0; the recurrent output does not.
        torch.testing.assert_close(model.frame_logits(changed)[:, 1:], model.frame_logits(video)[:, 1:])
        assert not torch.allclose(model.frame_logits(changed)[:, 0], model.frame_logits(video)[:, 0])
        recurrent_steps = model._recurrent_logits(model.frame_features(video))
        changed_steps = model._recurrent_logits(model.frame_features(changed))
        assert (recurrent_steps[:, -1] - changed_steps[:, -1]).abs().max() > 1e-6
        assert (model.frame_logits(video) - recurrent_steps)[:, 1:].abs().max() > 1e-4
        # Video logits are the mean of the recurrent per-step logits.
        torch.testing.assert_close(model(video), recurrent_steps.mean(dim=1))


def test_forward_with_frames_equals_both_paths(model, rng):
    video = torch.rand(3, 16, 3, 32, 32, generator=rng)
    with torch.no_grad():
        video_logits, frame_logits = model.forward_with_frames(video)
        torch.testing.assert_close(video_logits, model(video), rtol=0, atol=0)
        torch.testing.assert_close(frame_logits, model.frame_logits(video), rtol=0, atol=0)


def test_batch_equals_items_and_input_is_not_mutated(model, rng):
    video = torch.rand(3, 16, 3, 32, 32, generator=rng)
    before = video.clone()
    with torch.no_grad():
        logits, frames = model.forward_with_frames(video)
        for i in range(3):
            one_logits, one_frames = model.forward_with_frames(video[i : i + 1])
            torch.testing.assert_close(logits[i : i + 1], one_logits, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(frames[i : i + 1], one_frames, rtol=1e-5, atol=1e-5)
    assert torch.equal(video, before)


def test_rnn_backward_mode_switches_only_the_lstm_and_keeps_outputs(rng):
    torch.manual_seed(0)
    model = create_model("test-lrcn", num_classes=3, dropout=0.5).eval()
    video = torch.rand(2, 4, 3, 32, 32, generator=rng, requires_grad=True)
    expected = model(video).detach()
    with model.rnn_backward_mode():
        assert model.lstm.training
        assert not model.cnn.training and not model.dropout.training
        out = model(video)
        out.sum().backward()
    assert not model.lstm.training
    torch.testing.assert_close(out.detach(), expected)
    assert video.grad is not None and video.grad.abs().sum() > 0


def test_constructor_validation():
    with pytest.raises(ValueError, match="num_classes"):
        LRCN(num_classes=0)
    with pytest.raises(ValueError, match="H, W >= 16"):
        LRCN(num_classes=2, input_size=(4, 8, 8))


def test_the_inference_max_pool_equals_max_pool_2d_bit_for_bit(rng):
    """MaxPool2x2 without autograd (the four 2x2 phases) gives nn.MaxPool2d(2)'s values exactly,
    odd sizes (the last row / column dropped), ties and NaN included; with autograd it is
    MaxPool2d, gradients included."""
    from vidshield.models.lrcn import MaxPool2x2

    pool, reference = MaxPool2x2(), torch.nn.MaxPool2d(2)
    for shape in ((3, 4, 8, 8), (2, 5, 9, 7), (1, 1, 2, 3)):
        x = torch.relu(torch.randn(*shape, generator=rng)).round(decimals=1)  # many zeros, many ties
        x.view(-1)[3] = float("nan")
        with torch.no_grad():
            assert torch.equal(pool(x).isnan(), reference(x).isnan())
            assert torch.equal(pool(x).nan_to_num(-1), reference(x).nan_to_num(-1))
        a, b = x.nan_to_num(0).requires_grad_(), x.nan_to_num(0).requires_grad_()
        pool(a).sum().backward()
        reference(b).sum().backward()
        assert torch.equal(a.grad, b.grad)
    model = create_model("test-lrcn", num_classes=3).eval()
    video = torch.rand(2, 4, 3, 32, 32, generator=rng)
    with torch.no_grad():
        fast = model.frame_outputs(video, with_video_logits=True)
    with torch.enable_grad():
        slow = model.frame_outputs(video, with_video_logits=True)
    assert all(torch.equal(f, s) for f, s in zip(fast, slow))


def test_the_inference_cnn_in_passes_equals_one_pass_bit_for_bit(rng):
    """At inference the frame CNN goes through many frames in passes of about INFERENCE_PIXELS
    (each of 2 or more frames): the same features, bit for bit, as one pass of all of them; in
    train mode or with autograd it is one pass (BatchNorm's batch statistics, gradients)."""
    from vidshield.models.lrcn import INFERENCE_PIXELS

    model = create_model("test-lrcn", num_classes=3).eval()
    side = 32
    per_pass = INFERENCE_PIXELS // side**2
    for n in (per_pass + 1, 2 * per_pass + 3, 5 * per_pass - 1):
        frames = torch.rand(n, 3, side, side, generator=rng)
        with torch.no_grad():
            assert torch.equal(model.cnn(frames), model.cnn.body(frames)), n
    calls = []
    hook = model.cnn.body.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    frames = torch.rand(2 * per_pass + 3, 3, side, side, generator=rng)
    with torch.no_grad():
        model.cnn(frames)
    assert len(calls) == 3 and min(calls) >= 2 and sum(calls) == frames.shape[0]
    calls.clear()
    model.cnn(frames)  # autograd on: one pass
    assert calls == [frames.shape[0]]
    hook.remove()
