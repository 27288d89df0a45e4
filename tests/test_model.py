"""GlowTTS as a whole: size, losses, training, inference, save/load, mixed precision, errors."""

import io
import math

import pytest
import torch
from conftest import make_batch, randomize_flows, tiny_glow_tts

from espnet_glowtts import GlowTTS
from espnet_glowtts.encoder import ChannelLayerNorm
from espnet_glowtts.tensor_utils import (
    fold_blank_durations,
    intersperse_blank,
    path_from_durations,
    sequence_mask,
)


def test_default_config_has_the_papers_size():
    model = GlowTTS(idim=60)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - 28.6e6) / 28.6e6 < 0.02, count
    decoder = sum(p.numel() for p in model.decoder.parameters())
    assert abs(decoder - 21.4e6) / 21.4e6 < 0.02, decoder


def test_intersperse_and_fold_blank_durations():
    text = torch.tensor([[5, 6, 7], [8, 9, 0]])
    out, lengths = intersperse_blank(text, torch.tensor([3, 2]), blank_id=0)
    assert out[0].tolist() == [0, 5, 0, 6, 0, 7, 0]
    assert out[1, :5].tolist() == [0, 8, 0, 9, 0]
    assert lengths.tolist() == [7, 5]
    durations = torch.tensor([[1, 2, 3, 4, 5, 6, 7]])
    folded = fold_blank_durations(durations, torch.tensor([3]))
    # blank 3 splits 1 | 2, blank 5 splits 2 | 3; the end blanks go to the end tokens
    assert folded.tolist() == [[1 + 2 + 1, 2 + 4 + 2, 3 + 6 + 7]]
    assert folded.sum() == durations.sum()
    # A shorter utterance of a padded batch: its own last blank goes to its last token.
    padded = torch.tensor([[1, 2, 3, 4, 5, 0, 0], [1, 1, 1, 1, 1, 1, 1]])
    folded = fold_blank_durations(padded, torch.tensor([2, 3]))
    assert folded[0].tolist() == [1 + 2 + 1, 2 + 4 + 5, 0]
    assert folded.sum(1).tolist() == padded.sum(1).tolist()


def test_path_from_durations():
    durations = torch.tensor([[2, 0, 3]])
    path = path_from_durations(durations, torch.ones(1, 3, 6))
    assert path[0].tolist() == [[1, 1, 0, 0, 0, 0], [0] * 6, [0, 0, 1, 1, 1, 0]]


def _mle_reference(model, batch):
    """The negative log-likelihood per frame and channel, computed with torch.distributions
    from the model's parts: prior per token, MAS path, decoder latents and log-determinant.
    """
    text, feats = batch["text"], batch["feats"]
    x_lengths = 2 * batch["text_lengths"] + 1
    f_lengths = batch["feats_lengths"] // 2 * 2
    feats = feats[:, : int(f_lengths.max())]
    _, mean, log_std, x_mask, _ = model._encode(text, batch["text_lengths"])
    y_mask = sequence_mask(f_lengths, feats.size(1))
    z, logdet = model.decoder(feats.transpose(1, 2), y_mask)
    path = model._align(z, mean, log_std, x_lengths, f_lengths)
    total = 0.0
    for b in range(text.size(0)):
        token_of_frame = path[b, : x_lengths[b], : f_lengths[b]].argmax(0)
        prior = torch.distributions.Normal(
            mean[b][:, token_of_frame], log_std[b][:, token_of_frame].exp()
        )
        total += prior.log_prob(z[b, :, : f_lengths[b]]).sum() + logdet[b]
    return -total / (f_lengths.sum() * model.odim)


def test_mle_loss_matches_independent_computation():
    model = tiny_glow_tts(
        mean_only=False, encoder_dropout=0.0, duration_dropout=0.0, decoder_dropout=0.0
    )
    randomize_flows(model)
    with torch.no_grad():
        model.encoder.proj_log_std.weight.normal_(0, 0.3)
    batch = make_batch()
    _, stats, _ = model(**batch)
    expected = _mle_reference(model, batch)
    assert math.isclose(
        float(stats["mle_loss"]), float(expected), rel_tol=1e-5, abs_tol=1e-5
    )


def test_every_parameter_gets_a_gradient():
    model = tiny_glow_tts(mean_only=False, spks=3, langs=2, spk_embed_dim=6)
    conditions = dict(
        sids=torch.tensor([[0], [2]]),
        lids=torch.tensor([[1], [0]]),
        spembs=torch.randn(2, 6),
    )
    # From the first step, the speaker and language vectors learn (through the duration
    # predictor; the flows' zero-initialised output layers pass no gradient yet).
    loss, _, _ = model(**make_batch(), **conditions)
    loss.backward()
    assert model.sid_emb.weight.grad[[0, 2]].abs().sum(1).gt(0).all()
    assert (
        model.sid_emb.weight.grad[1].abs().sum() == 0
    )  # speaker 1 is not in the batch
    assert model.lid_emb.weight.grad.abs().sum(1).gt(0).all()
    assert model.spemb_proj.weight.grad.abs().sum() > 0
    # Once the zero-initialised output layers have moved (as after a few steps), every
    # parameter, the speaker and language tables and every flow's conditioning included.
    model.zero_grad()
    randomize_flows(model)
    with torch.no_grad():
        model.encoder.prenet.proj.weight.normal_(0.0, 0.1)
    loss, _, _ = model(**make_batch(), **conditions)
    loss.backward()
    zero = [
        n
        for n, p in model.named_parameters()
        if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert not zero, zero
    grads_from_flows = [
        p.grad for n, p in model.named_parameters() if "cond_layer" in n
    ]
    assert grads_from_flows and all(g.abs().sum() > 0 for g in grads_from_flows)


def test_duration_loss_does_not_train_the_encoder():
    model = tiny_glow_tts()
    batch = make_batch()
    _, mean, _, x_mask, _ = model._encode(batch["text"], batch["text_lengths"])
    x, *_ = model._encode(batch["text"], batch["text_lengths"])
    logw = model.duration_predictor(x.detach(), x_mask)
    logw.sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())


def test_overfitting_two_utterances_lowers_both_losses_and_durations_cover_frames():
    model = tiny_glow_tts(
        encoder_dropout=0.0, duration_dropout=0.0, decoder_dropout=0.0
    )
    batch = make_batch(text_lengths=(6, 4), feats_lengths=(40, 28))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(60):
        loss, stats, _ = model(**batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append((float(stats["mle_loss"]), float(stats["duration_loss"])))
    first, last = history[0], history[-1]
    assert last[0] < first[0] - 0.3, history[::10]
    assert last[1] < 0.5 * first[1], history[::10]
    model.eval()
    for b in range(2):
        n = int(batch["text_lengths"][b])
        frames = int(batch["feats_lengths"][b])
        out = model.inference(
            batch["text"][b, :n],
            feats=batch["feats"][b, :frames],
            use_teacher_forcing=True,
        )
        assert out["duration"].shape == (n,)
        assert int(out["duration"].sum()) == frames
        assert out["feat_gen"].shape == (frames // 2 * 2, 8)


def test_inference_durations_sum_to_output_and_length_scale_stretches():
    model = tiny_glow_tts().eval()
    text = torch.tensor([3, 4, 5, 6, 7])
    out = model.inference(text, noise_scale=0.0)
    assert out["duration"].shape == (5,)
    assert int(out["duration"].sum()) == out["feat_gen"].size(0)
    assert out["feat_gen"].size(0) % 2 == 0
    slow = model.inference(text, noise_scale=0.0, length_scale=3.0)
    assert slow["feat_gen"].size(0) > 2 * out["feat_gen"].size(0)
    again = model.inference(text, noise_scale=0.0)
    torch.testing.assert_close(again["feat_gen"], out["feat_gen"], rtol=0, atol=0)
    forced = model.inference(
        text, durations=torch.tensor([1, 2, 3, 4, 6]), noise_scale=0.0
    )
    assert forced["duration"].tolist() == [1, 2, 3, 4, 6]
    assert forced["feat_gen"].size(0) == 16


def test_batch_inference_matches_single_inference():
    model = tiny_glow_tts().eval()
    randomize_flows(model)
    texts = [torch.tensor([3, 4, 5, 6, 7]), torch.tensor([8, 2, 9])]
    batch = model.batch_inference(texts, noise_scale=0.0)
    for i, text in enumerate(texts):
        single = model.inference(text, noise_scale=0.0)
        torch.testing.assert_close(
            batch["feat_gen"][i], single["feat_gen"], rtol=1e-4, atol=1e-4
        )
        assert batch["duration"][i, : len(text)].tolist() == single["duration"].tolist()


def test_state_dict_roundtrip_reproduces_inference_also_after_caches():
    model = tiny_glow_tts(spks=2).eval()
    randomize_flows(model)
    text, sids = torch.tensor([3, 4, 5, 6]), torch.tensor([1])
    reference = model.inference(text, sids=sids, noise_scale=0.0)["feat_gen"]
    model.inference(text, sids=sids, noise_scale=0.0)  # caches are now built

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert not any("cache" in k for k in model.state_dict())
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    fresh = tiny_glow_tts(spks=2)
    fresh.load_state_dict(state, strict=True)
    fresh.eval()
    torch.testing.assert_close(
        fresh.inference(text, sids=sids, noise_scale=0.0)["feat_gen"],
        reference,
        rtol=0,
        atol=0,
    )
    # Loading other weights into a model whose caches are built must not reuse them.
    other = tiny_glow_tts(spks=2).eval()
    randomize_flows(other, scale=0.3)
    other.inference(text, sids=sids, noise_scale=0.0)
    other.load_state_dict(state, strict=True)
    torch.testing.assert_close(
        other.inference(text, sids=sids, noise_scale=0.0)["feat_gen"],
        reference,
        rtol=0,
        atol=0,
    )


def test_channel_layer_norm_keeps_release_names_and_the_authors_eps():
    # ESPnet's LayerNorm underneath; the state dict must stay loadable by/from release 0.1.0.
    norm = ChannelLayerNorm(6)
    assert list(norm.state_dict()) == ["gamma", "beta"]
    gamma, beta = torch.randn(6), torch.randn(6)
    norm.load_state_dict({"gamma": gamma, "beta": beta}, strict=True)
    x = (
        torch.randn(2, 6, 5) * torch.tensor([1.0, 0.003])[:, None, None]
    )  # one near-silent item
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    want = (x - mean) / torch.sqrt(var + 1e-4) * gamma[:, None] + beta[:, None]
    torch.testing.assert_close(norm(x), want)
    model = tiny_glow_tts()
    names = [k for k in model.state_dict() if ".norm" in k]
    assert names and all(k.endswith((".gamma", ".beta")) for k in names)


def test_training_after_inference_still_learns():
    model = tiny_glow_tts()
    batch = make_batch()
    model.eval()
    model.inference(batch["text"][0, :5], noise_scale=0.0)
    model.train()
    loss, _, _ = model(**batch)
    loss.backward()
    assert model.decoder.flows[2].start.weight_v.grad is not None


def test_bf16_autocast_forward_is_finite_and_close_to_float32():
    model = tiny_glow_tts(
        encoder_dropout=0.0, duration_dropout=0.0, decoder_dropout=0.0, spk_embed_dim=4
    )
    randomize_flows(model)
    batch = make_batch()
    batch["spembs"] = torch.randn(2, 4)
    _, stats32, _ = model(**batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss16, stats16, _ = model(**batch)
    assert torch.isfinite(loss16)
    assert abs(float(stats16["mle_loss"]) - float(stats32["mle_loss"])) < 0.05
    assert abs(float(stats16["duration_loss"]) - float(stats32["duration_loss"])) < 0.1


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty_text", "text is empty"),
        ("token_out_of_vocab", "outside the vocabulary"),
        ("negative_token", "outside the vocabulary"),
        ("wrong_feat_dim", "feature dimension 7"),
        ("nan_feats", "NaN"),
        ("speaker_out_of_range", "sids contains"),
        ("missing_speaker", "sids is required"),
        ("wrong_spemb_size", "spembs has size 5"),
        ("too_few_frames", "frames"),
    ],
)
def test_bad_training_input_raises_a_clear_error(case, message):
    model = tiny_glow_tts(spks=3, spk_embed_dim=4)
    batch = make_batch()
    extra = dict(sids=torch.tensor([[0], [1]]), spembs=torch.randn(2, 4))
    if case == "empty_text":
        batch["text_lengths"] = torch.tensor([5, 0])
    elif case == "token_out_of_vocab":
        batch["text"][1, 0] = 12
    elif case == "negative_token":
        batch["text"][0, 2] = -1
    elif case == "wrong_feat_dim":
        batch["feats"] = batch["feats"][:, :, :7]
    elif case == "nan_feats":
        batch["feats"][0, 3, 2] = float("nan")
    elif case == "speaker_out_of_range":
        extra["sids"] = torch.tensor([[0], [3]])
    elif case == "missing_speaker":
        del extra["sids"]
    elif case == "wrong_spemb_size":
        extra["spembs"] = torch.randn(2, 5)
    elif case == "too_few_frames":
        batch["feats_lengths"] = torch.tensor([30, 6])
    with pytest.raises(ValueError, match=message):
        model(**batch, **extra)


def test_bad_inference_input_raises_a_clear_error():
    model = tiny_glow_tts(spks=3).eval()
    with pytest.raises(ValueError, match="text is empty"):
        model.inference(torch.tensor([], dtype=torch.long), sids=torch.tensor([0]))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.inference(torch.tensor([3, 99]), sids=torch.tensor([0]))
    with pytest.raises(ValueError, match="sids contains"):
        model.inference(torch.tensor([3, 4]), sids=torch.tensor([5]))
    with pytest.raises(ValueError, match="needs feats"):
        model.inference(
            torch.tensor([3, 4]), sids=torch.tensor([0]), use_teacher_forcing=True
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lids=torch.tensor([1]), spembs=torch.randn(4)), "sids is required"),
        (
            dict(sids=torch.tensor([3]), lids=torch.tensor([1]), spembs=torch.randn(4)),
            r"sids contains \[3\], expected ids in \[0, 3\)",
        ),
        (dict(sids=torch.tensor([1]), spembs=torch.randn(4)), "lids is required"),
        (
            dict(sids=torch.tensor([1]), lids=torch.tensor([2]), spembs=torch.randn(4)),
            r"lids contains \[2\]",
        ),
        (dict(sids=torch.tensor([1]), lids=torch.tensor([1])), "spembs is required"),
        (
            dict(sids=torch.tensor([1]), lids=torch.tensor([1]), spembs=torch.randn(5)),
            "spembs has size 5, expected spk_embed_dim=4",
        ),
    ],
)
def test_bad_speaker_or_language_at_inference_raises_a_clear_error(kwargs, message):
    model = tiny_glow_tts(spks=3, langs=2, spk_embed_dim=4).eval()
    with pytest.raises(ValueError, match=message):
        model.inference(torch.tensor([3, 4]), **kwargs)
    model.inference(
        torch.tensor([3, 4]),
        sids=torch.tensor([2]),
        lids=torch.tensor([1]),
        spembs=torch.randn(4),
    )  # the good call speaks


def test_log1p_duration_target_is_inverted_at_inference():
    model = tiny_glow_tts(duration_target="log1p").eval()
    logw = torch.log1p(torch.tensor([[3.0, 7.0]]))
    assert model._durations_from_log(logw, 1.0).tolist() == [[3.0, 7.0]]
    model_log = tiny_glow_tts(duration_target="log")
    assert (
        model_log._durations_from_log(torch.log(torch.tensor([[3.0]])), 2.0).item()
        == 6.0
    )
    with pytest.raises(ValueError, match="duration_target"):
        tiny_glow_tts(duration_target="linear")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize(
    "options", [{}, {"memory_efficient_flows": True, "pack_flow_batch": True}]
)
def test_cuda_training_step_matches_cpu(options, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # float32 convs
    torch.manual_seed(0)
    cpu = tiny_glow_tts(
        encoder_dropout=0.0, duration_dropout=0.0, decoder_dropout=0.0, **options
    )
    randomize_flows(cpu)
    gpu = tiny_glow_tts(
        encoder_dropout=0.0, duration_dropout=0.0, decoder_dropout=0.0, **options
    )
    gpu.load_state_dict(cpu.state_dict())
    gpu.cuda()
    for module in (*cpu.modules(), *gpu.modules()):
        if isinstance(module, torch.nn.Dropout):  # the prenet's fixed 0.5 too
            module.p = 0.0
    batch = make_batch()
    loss_cpu, stats_cpu, _ = cpu(**batch)
    loss_gpu, stats_gpu, _ = gpu(**{k: v.cuda() for k, v in batch.items()})
    loss_cpu.backward()
    loss_gpu.backward()
    assert math.isclose(float(loss_gpu), float(loss_cpu), rel_tol=1e-4, abs_tol=1e-4)
    for (name, p_cpu), p_gpu in zip(cpu.named_parameters(), gpu.parameters()):
        if p_cpu.grad is not None:
            assert torch.allclose(
                p_gpu.grad.cpu(), p_cpu.grad, rtol=1e-3, atol=1e-4
            ), name


def test_relative_attention_equals_a_plain_per_pair_computation():
    """The banded relative terms against the definition (Shaw et al.), pair by pair, on a
    padded batch: outputs and gradients."""
    from espnet_glowtts.encoder import RelativeSelfAttention

    torch.manual_seed(0)
    window, heads, d = 2, 2, 4
    attention = RelativeSelfAttention(heads * d, heads, window)
    q = torch.randn(2, heads, 7, d, requires_grad=True)
    k, v = torch.randn(2, heads, 7, d), torch.randn(2, heads, 7, d)
    valid = torch.tensor([[1] * 7, [1] * 4 + [0] * 3]).bool()
    pair_mask = valid[:, None, :, None] & valid[:, None, None, :]

    scores = q @ k.transpose(-2, -1)
    expected_scores = scores.clone()
    for i in range(7):
        for j in range(7):
            if abs(j - i) <= window:
                rel = q[..., i, :] @ attention.rel_key[j - i + window]
                expected_scores[..., i, j] = scores[..., i, j] + rel
    weights = torch.softmax(expected_scores.masked_fill(~pair_mask, -1e4), dim=-1)
    expected = weights @ v
    for i in range(7):
        for j in range(max(0, i - window), min(7, i + window + 1)):
            rel_value = attention.rel_value[j - i + window]
            expected[..., i, :] = (
                expected[..., i, :] + weights[..., i, j, None] * rel_value
            )
    got = attention.attend(q, k, v, pair_mask)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    params = [q, attention.rel_key, attention.rel_value]
    for a, b in zip(
        torch.autograd.grad(got.square().sum(), params),
        torch.autograd.grad(expected.square().sum(), params),
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
