"""The flow decoder: invertibility, exact log-determinants, ActNorm's data-dependent init."""

import torch
from conftest import randomize_flows

from espnet_glowtts.flows import (
    ActNorm,
    FlowDecoder,
    InvertibleConv1x1,
    squeeze,
    unsqueeze,
)
from espnet_glowtts.tensor_utils import sequence_mask


def _decoder(channels=8, **kw):
    decoder = FlowDecoder(
        channels, hidden_channels=16, num_blocks=2, num_layers=2, dropout=0.0, **kw
    )
    randomize_flows(torch.nn.ModuleDict(dict(decoder=decoder)), scale=0.2)
    return decoder.eval()


def test_squeeze_roundtrip_and_mask():
    x = torch.randn(2, 3, 8)
    mask = sequence_mask(torch.tensor([8, 6]), 8)
    folded, folded_mask = squeeze(x * mask, mask, 2)
    assert folded.shape == (2, 6, 4)
    assert folded_mask[:, 0].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    back, back_mask = unsqueeze(folded, folded_mask, 2)
    torch.testing.assert_close(back, x * mask)
    torch.testing.assert_close(back_mask, mask)


def test_decoder_is_invertible():
    decoder = _decoder()
    x = torch.randn(3, 8, 40)
    mask = sequence_mask(torch.tensor([40, 32, 10]), 40)
    x = x * mask
    z, logdet = decoder(x, mask)
    assert logdet.shape == (3,)
    assert (z - x).abs().max() > 1e-2, "flows must not be the identity in this check"
    with torch.no_grad():
        x_back, _ = decoder(z, mask, reverse=True)
    assert (x_back - x).abs().max() < 1e-4


def test_decoder_is_invertible_with_global_conditioning():
    decoder = _decoder(global_channels=5)
    x = torch.randn(2, 8, 20)
    mask = torch.ones(2, 1, 20)
    g = torch.randn(2, 5, 1)
    z, _ = decoder(x, mask, g)
    z_other, _ = decoder(x, mask, torch.randn(2, 5, 1))
    assert (z - z_other).abs().max() > 1e-3, "conditioning must reach the couplings"
    with torch.no_grad():
        x_back, _ = decoder(z, mask, g, reverse=True)
    assert (x_back - x).abs().max() < 1e-4


def test_logdet_equals_autograd_jacobian():
    torch.set_default_dtype(torch.float64)
    try:
        decoder = _decoder(channels=2)
        t = 6
        mask = torch.ones(1, 1, t)
        x = torch.randn(1, 2, t)

        def flow(flat):
            return decoder(flat.view(1, 2, t), mask)[0].reshape(-1)

        jacobian = torch.autograd.functional.jacobian(flow, x.reshape(-1))
        expected = torch.linalg.slogdet(jacobian)[1]
        _, logdet = decoder(x, mask)
        torch.testing.assert_close(logdet[0], expected, rtol=1e-6, atol=1e-6)
    finally:
        torch.set_default_dtype(torch.float32)


def test_logdet_counts_only_valid_frames():
    decoder = _decoder()
    x = torch.randn(1, 8, 12)
    full_mask = torch.ones(1, 1, 12)
    short_mask = sequence_mask(torch.tensor([8]), 12)
    _, logdet_short = decoder(x * short_mask, short_mask)
    _, logdet_cut = decoder(x[:, :, :8], full_mask[:, :, :8])
    torch.testing.assert_close(logdet_short, logdet_cut, rtol=1e-5, atol=1e-4)


def test_actnorm_data_dependent_init_standardizes_valid_frames():
    norm = ActNorm(4).train()
    x = torch.randn(3, 4, 50) * torch.tensor([0.5, 2.0, 3.0, 7.0])[None, :, None] + 5.0
    mask = sequence_mask(torch.tensor([50, 30, 12]), 50)
    x = x + 100.0 * (1 - mask)  # padding garbage must not enter the statistics
    z, _ = norm(x, mask)
    valid = mask.expand_as(z).bool()
    per_channel = z.transpose(0, 1)[valid.transpose(0, 1)].view(4, -1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        per_channel.var(1, unbiased=False), torch.ones(4), atol=1e-3, rtol=0
    )
    assert bool(norm.initialized)
    before = norm.log_scale.detach().clone()
    norm(torch.randn(3, 4, 50), mask)
    torch.testing.assert_close(norm.log_scale.detach(), before)  # init happens once


def test_invertible_conv_caches_inverse_until_weight_changes():
    conv = InvertibleConv1x1(8).eval()
    x = torch.randn(2, 8, 5)
    mask = torch.ones(2, 1, 5)
    with torch.no_grad():
        z, _ = conv(x, mask)
        first = conv.inverse_weight()
        assert conv.inverse_weight() is first
        torch.testing.assert_close(conv(z, mask, reverse=True)[0], x, atol=1e-5, rtol=0)
        conv.weight.mul_(2.0)  # an optimizer step or load_state_dict writes in place
        assert conv.inverse_weight() is not first
        z2, _ = conv(x, mask)
        torch.testing.assert_close(
            conv(z2, mask, reverse=True)[0], x, atol=1e-5, rtol=0
        )
    assert "inverse" not in "".join(conv.state_dict())


def _actnorm_rank(rank, init_file, result_file):
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=2
    )
    torch.manual_seed(rank)
    norm = ActNorm(3).train()
    x = torch.randn(2, 3, 20) * (rank + 1) + 3 * rank  # the ranks see different data
    norm(x, torch.ones(2, 1, 20))
    torch.save(dict(norm.state_dict(), x=x), f"{result_file}.{rank}")
    torch.distributed.destroy_process_group()


def test_actnorm_init_is_identical_across_ranks_and_uses_their_joint_batch(tmp_path):
    torch.multiprocessing.spawn(
        _actnorm_rank, args=(tmp_path / "init", tmp_path / "out"), nprocs=2
    )
    states = [torch.load(tmp_path / f"out.{r}", weights_only=True) for r in range(2)]
    torch.testing.assert_close(states[0]["log_scale"], states[1]["log_scale"])
    torch.testing.assert_close(states[0]["bias"], states[1]["bias"])
    joint = torch.cat([s["x"] for s in states], dim=0)  # (4, 3, 20)
    z = states[0]["bias"] + torch.exp(states[0]["log_scale"]) * joint
    torch.testing.assert_close(z.mean(dim=(0, 2)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        z.var(dim=(0, 2), unbiased=False), torch.ones(3), atol=1e-3, rtol=0
    )
