"""memory_efficient_flows: the same losses and gradients as the plain path, less memory."""

import pytest
import torch
from conftest import make_batch, randomize_flows, tiny_glow_tts

from espnet_glowtts.flows import FlowDecoder
from espnet_glowtts.tensor_utils import sequence_mask


def _pair(**overrides):
    """Two tiny models with the same weights, plain and memory-efficient."""
    torch.manual_seed(0)
    plain = tiny_glow_tts(**overrides)
    randomize_flows(plain, scale=0.2)
    efficient = tiny_glow_tts(memory_efficient_flows=True, **overrides)
    efficient.load_state_dict(plain.state_dict())
    return plain, efficient


def _loss_and_grads(model, batch, seed=1):
    torch.manual_seed(seed)
    model.train()
    model.zero_grad(set_to_none=True)
    loss, stats, _ = model(**batch)
    loss.backward()
    return stats, {
        n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
    }


def _assert_same(a, b):
    (stats_a, grads_a), (stats_b, grads_b) = a, b
    assert stats_a["loss"] == pytest.approx(stats_b["loss"], abs=1e-5)
    assert grads_a.keys() == grads_b.keys()
    decoder_grads = [n for n in grads_a if n.startswith("decoder.")]
    assert len(decoder_grads) > 20
    for name in grads_a:
        torch.testing.assert_close(
            grads_b[name],
            grads_a[name],
            rtol=1e-5,
            atol=1e-5,
            msg=lambda m: f"{name}: {m}",
        )


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_gradients_equal_the_plain_path(dropout):
    plain, efficient = _pair(decoder_dropout=dropout)
    batch = make_batch(text_lengths=(5, 3, 4), feats_lengths=(30, 17, 24))
    _assert_same(_loss_and_grads(plain, batch), _loss_and_grads(efficient, batch))


def test_gradients_equal_the_plain_path_with_speaker_conditioning():
    plain, efficient = _pair(spks=3, decoder_dropout=0.1)
    batch = dict(make_batch(), sids=torch.tensor([[2], [0]]))
    a, b = _loss_and_grads(plain, batch), _loss_and_grads(efficient, batch)
    assert a[1]["sid_emb.weight"].abs().max() > 0
    _assert_same(a, b)


def test_actnorm_data_dependent_init_is_the_same():
    torch.manual_seed(0)
    plain = tiny_glow_tts()
    efficient = tiny_glow_tts(memory_efficient_flows=True)
    efficient.load_state_dict(plain.state_dict())
    assert not bool(efficient.decoder.flows[0].initialized)
    batch = make_batch()
    _assert_same(_loss_and_grads(plain, batch), _loss_and_grads(efficient, batch))
    for a, b in zip(plain.decoder.flows[::3], efficient.decoder.flows[::3]):
        torch.testing.assert_close(b.log_scale, a.log_scale)
        assert bool(b.initialized)


def test_rng_stream_after_the_decoder_is_unchanged():
    """Dropout after the decoder (duration predictor) must draw the same numbers."""
    plain, efficient = _pair(decoder_dropout=0.3)
    batch = make_batch()
    after = []
    for model in (plain, efficient):
        _loss_and_grads(model, batch, seed=5)
        after.append(torch.rand(4))
    torch.testing.assert_close(after[0], after[1], rtol=0, atol=0)


def _peak_live_bytes(fn):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from inference_speed import PeakTensorMemory

    with PeakTensorMemory() as tracker:
        fn()
    return tracker.peak


def test_decoder_activation_memory_is_a_fraction_of_the_plain_path():
    torch.manual_seed(0)
    kw = dict(hidden_channels=32, num_blocks=8, num_layers=2, dropout=0.0)
    plain = FlowDecoder(16, **kw)
    efficient = FlowDecoder(16, memory_efficient=True, **kw)
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(4, 16, 400)
    mask = sequence_mask(torch.tensor([400, 300, 200, 100]), 400)

    def step(decoder):
        def run():
            z, logdet = decoder(x * mask, mask)
            ((z**2).sum() - logdet.sum()).backward()

        return run

    peaks = [_peak_live_bytes(step(d)) for d in (plain, efficient)]
    assert peaks[1] < 0.4 * peaks[0], peaks
