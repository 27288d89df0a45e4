"""Inference replayed as CUDA graphs: bucket padding is exact, replays equal eager runs."""

import pytest
import torch

from tests.conftest import randomize_flows, tiny_glow_tts

COND = dict(spks=3, spk_embed_dim=5)


def _model(**overrides):
    torch.manual_seed(0)
    model = tiny_glow_tts(mean_only=False, **{**COND, **overrides})
    randomize_flows(model)
    return model.eval()


def _synthesize(model, ids, seed, **kwargs):
    torch.manual_seed(seed)
    return model.inference(
        ids,
        sids=torch.tensor([1], device=ids.device),
        spembs=torch.linspace(-1, 1, 5, device=ids.device),
        noise_scale=0.5,
        **kwargs,
    )


@pytest.mark.parametrize("pack_flow_batch", [False, True])
def test_bucket_padding_gives_the_unpadded_output(pack_flow_batch):
    """The padded, masked computation that the graphs hold, run eagerly on the CPU."""
    model = _model(pack_flow_batch=pack_flow_batch)
    g = torch.Generator().manual_seed(1)
    cases = [torch.randint(2, 11, (n,), generator=g) for n in (1, 9, 23)]
    eager = [_synthesize(model, ids, seed=i) for i, ids in enumerate(cases)]
    model.enable_cuda_graphs(token_bucket=16, frame_bucket=48, capture=False)
    for i, (ids, ref) in enumerate(zip(cases, eager)):
        out = _synthesize(model, ids, seed=i)
        torch.testing.assert_close(out["duration"], ref["duration"], rtol=0, atol=0)
        torch.testing.assert_close(out["feat_gen"], ref["feat_gen"], rtol=0, atol=1e-5)
    # teacher forcing decodes through the same padded flows
    feats = eager[2]["feat_gen"]
    forced = _synthesize(model, cases[2], 5, feats=feats, use_teacher_forcing=True)
    model.disable_cuda_graphs()
    ref = _synthesize(model, cases[2], 5, feats=feats, use_teacher_forcing=True)
    torch.testing.assert_close(forced["feat_gen"], ref["feat_gen"], rtol=0, atol=1e-5)


def test_padded_batches_match_too():
    model = _model()
    texts = [torch.tensor([3, 4, 5, 6, 7, 8, 9]), torch.tensor([2, 5])]
    kwargs = dict(sids=torch.tensor([0, 2]), spembs=torch.randn(2, 5), noise_scale=0.0)
    ref = model.batch_inference(texts, **kwargs)
    model.enable_cuda_graphs(token_bucket=8, frame_bucket=32, capture=False)
    out = model.batch_inference(texts, **kwargs)
    assert torch.equal(out["duration"], ref["duration"])
    for a, b in zip(out["feat_gen"], ref["feat_gen"]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_enabling_graphs_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="needs a CUDA device"):
        _model().enable_cuda_graphs()


def test_training_ignores_the_graphs():
    model = _model()
    model.enable_cuda_graphs(capture=False)
    with torch.no_grad():
        assert model._graphs_for(torch.zeros(1)) is not None
        model.train()
        assert model._graphs_for(torch.zeros(1)) is None
    model.eval()
    assert model._graphs_for(torch.zeros(1)) is None  # autograd on


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_graph_replays_equal_eager_inference():
    model = _model().cuda()
    g = torch.Generator().manual_seed(2)
    cases = [torch.randint(2, 11, (n,), generator=g).cuda() for n in (5, 9, 30, 31)]
    eager = [_synthesize(model, ids, seed=i) for i, ids in enumerate(cases)]
    model.enable_cuda_graphs(token_bucket=16, frame_bucket=64)
    for _ in range(2):  # the first pass captures, the second replays
        for i, (ids, ref) in enumerate(zip(cases, eager)):
            out = _synthesize(model, ids, seed=i)
            assert torch.equal(out["duration"], ref["duration"])
            torch.testing.assert_close(
                out["feat_gen"], ref["feat_gen"], rtol=0, atol=1e-4
            )
    graphs = model._cuda_graphs
    # 5 and 9 tokens share a bucket, as do 30 and 31: two encoder graphs
    assert len(graphs._encode.graphs) == 2
    assert 1 <= len(graphs._decode.graphs) <= len(cases)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_graphs_capture_packed_batches_unpacked():
    """Packing reads lengths on the host: under capture the couplings run unpacked."""
    model = _model(pack_flow_batch=True).cuda()
    texts = [torch.tensor([3, 4, 5, 6, 7, 8, 9]).cuda(), torch.tensor([2, 5]).cuda()]
    kwargs = dict(
        sids=torch.tensor([0, 2]).cuda(),
        spembs=torch.randn(2, 5).cuda(),
        noise_scale=0.0,
    )
    ref = model.batch_inference(texts, **kwargs)
    model.enable_cuda_graphs(token_bucket=8, frame_bucket=32)
    for _ in range(2):  # capture, then replay
        out = model.batch_inference(texts, **kwargs)
        assert torch.equal(out["duration"], ref["duration"])
        for a, b in zip(out["feat_gen"], ref["feat_gen"]):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
