"""pack_flow_batch: the couplings' WaveNets on valid frames only give the same numbers."""

import pytest
import torch
from conftest import make_batch, randomize_flows, tiny_glow_tts
from test_memory_efficient import _assert_same, _loss_and_grads

from espnet_glowtts.flows import WaveNet
from espnet_glowtts.packing import conv_reach, packed_call
from espnet_glowtts.tensor_utils import sequence_mask


def _models(**overrides):
    torch.manual_seed(0)
    plain = tiny_glow_tts(decoder_dropout=0.0, **overrides)
    randomize_flows(plain, scale=0.2)
    packed = tiny_glow_tts(decoder_dropout=0.0, pack_flow_batch=True, **overrides)
    packed.load_state_dict(plain.state_dict())
    return plain, packed


@pytest.mark.parametrize("dilation_rate", [1, 2])
def test_wavenet_packed_equals_padded(dilation_rate):
    torch.manual_seed(0)
    net = WaveNet(
        8, kernel_size=5, dilation_rate=dilation_rate, num_layers=3, global_channels=3
    )
    for p in net.parameters():
        p.data.normal_(0, 0.3)
    assert conv_reach(net) == 2 * dilation_rate**2
    mask = sequence_mask(torch.tensor([20, 7, 13]), 20)
    x = torch.randn(3, 8, 20) * mask
    g = torch.randn(3, 3, 1)
    expected = net(x, mask, g)
    got = packed_call(net, x, mask, g)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("memory_efficient", [False, True])
def test_training_gradients_equal_the_plain_path(memory_efficient):
    plain, packed = _models(memory_efficient_flows=memory_efficient)
    batch = make_batch(text_lengths=(5, 3, 4), feats_lengths=(30, 12, 24))
    _assert_same(_loss_and_grads(plain, batch), _loss_and_grads(packed, batch))


def test_gradients_equal_with_speaker_conditioning():
    plain, packed = _models(spks=3)
    batch = dict(make_batch(), sids=torch.tensor([[2], [0]]))
    _assert_same(_loss_and_grads(plain, batch), _loss_and_grads(packed, batch))


def test_inference_is_unchanged():
    plain, packed = _models()
    text = [torch.tensor([3, 4, 5, 6]), torch.tensor([7, 8])]
    outs = []
    for model in (plain, packed):
        torch.manual_seed(3)
        outs.append(model.eval().batch_inference(text)["feat_gen"])
    for a, b in zip(*outs):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
