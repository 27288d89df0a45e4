"""Monotonic Alignment Search: exact agreement with a plain-Python transcription of the authors'
DP (float arithmetic in the input's precision), edge cases, fallback/device paths, value matrix.
"""

import math
import warnings

import numpy as np
import pytest
import torch

from espnet_glowtts.mas import (
    backend,
    log_likelihood,
    maximum_path,
    search,
    triton_path,
)
from espnet_glowtts.mas.torch_path import maximum_path_torch

needs_core = pytest.mark.skipif(
    search.default.core is None, reason="compiled MAS core not built"
)


def reference_path(value: np.ndarray, t_x: int, t_y: int):
    """The authors' DP and backtrack, one cell at a time, on value[:t_x, :t_y] of one item.

    Arithmetic uses numpy scalars of value's dtype, so float32 inputs round like float32 code.
    Returns (path of value's full shape, optimal score).
    """
    path = np.zeros(value.shape, dtype=value.dtype)
    q = value[:t_x, :t_y].copy()
    neg = value.dtype.type(-1e9)
    for y in range(t_y):
        for x in range(max(0, t_x + y - t_y), min(t_x, y + 1)):
            v_cur = neg if x == y else q[x, y - 1]
            if x == 0:
                v_prev = value.dtype.type(0.0) if y == 0 else neg
            else:
                v_prev = q[x - 1, y - 1]
            q[x, y] = max(v_cur, v_prev) + q[x, y]
    index = t_x - 1
    for y in range(t_y - 1, -1, -1):
        path[index, y] = 1
        if index != 0 and (index == y or q[index, y - 1] < q[index - 1, y - 1]):
            index -= 1
    return path, float(q[t_x - 1, t_y - 1])


def make_mask(t_text, t_feats, T=None, F=None, dtype=torch.float32):
    t_text, t_feats = torch.as_tensor(t_text), torch.as_tensor(t_feats)
    T = int(t_text.max()) if T is None else T
    F = int(t_feats.max()) if F is None else F
    rows = torch.arange(T)[None, :, None] < t_text[:, None, None]
    cols = torch.arange(F)[None, None, :] < t_feats[:, None, None]
    return (rows & cols).to(dtype)


def random_batch(seed, B=6, max_text=50, max_feats=120, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    t_text = torch.randint(1, max_text + 1, (B,), generator=g)
    t_feats = torch.stack(
        [torch.randint(int(t), max_feats + 1, (), generator=g) for t in t_text]
    )
    T, F = int(t_text.max()), int(t_feats.max())
    value = torch.randn(B, T, F, generator=g, dtype=dtype) * 3
    mask = make_mask(t_text, t_feats)
    value = value.masked_fill(mask == 0, float("nan"))  # padding must never leak in
    return value, mask, t_text, t_feats


def reference_batch(value, t_text, t_feats):
    v = value.numpy()
    out = [reference_path(v[b], int(t_text[b]), int(t_feats[b])) for b in range(len(v))]
    return torch.from_numpy(np.stack([p for p, _ in out])), [s for _, s in out]


def all_paths(value, mask, t_text, t_feats):
    """The compiled core (if built), its serial run, and the torch path on CPU tensors."""
    out = {"torch": maximum_path_torch(value, t_text, t_feats)}
    if search.default.core is not None:
        out["core"] = maximum_path(value, mask)
        out["core-1-thread"] = maximum_path(value, mask, num_threads=1)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_random_batches_match_reference(seed):
    value, mask, t_text, t_feats = random_batch(seed)
    before = value.clone()
    ref, scores = reference_batch(value, t_text, t_feats)
    for name, path in all_paths(value, mask, t_text, t_feats).items():
        assert path.dtype == value.dtype and path.shape == value.shape, name
        assert torch.equal(path, ref), name
    assert torch.equal(before.isnan(), value.isnan())
    assert torch.equal(before.nan_to_num(), value.nan_to_num())  # inputs untouched
    # Scores of the path equal the optimal score up to float32 rounding.
    got = (value.double().nan_to_num() * ref.double()).sum((1, 2))
    for b, s in enumerate(scores):
        assert abs(float(got[b]) - s) <= 1e-5 * (abs(s) + int(t_feats[b]) * 3), b


@pytest.mark.parametrize(
    "t_text,t_feats",
    [
        ((7, 3, 40), (7, 3, 40)),  # T_text == T_feats: the diagonal
        ((1, 1, 1), (1, 9, 64)),  # one token; a single-frame utterance
        ((16, 17, 33), (16, 40, 33)),  # block boundaries of the compiled core
    ],
)
def test_edge_shapes_match_reference(t_text, t_feats):
    g = torch.Generator().manual_seed(1)
    mask = make_mask(t_text, t_feats)
    value = torch.randn(mask.shape, generator=g).masked_fill(mask == 0, float("inf"))
    t_text, t_feats = torch.tensor(t_text), torch.tensor(t_feats)
    ref, _ = reference_batch(value, t_text, t_feats)
    for name, path in all_paths(value, mask, t_text, t_feats).items():
        assert torch.equal(path, ref), name
    if int(t_text[0]) == int(t_feats[0]):
        n = int(t_text[0])
        assert torch.equal(ref[0, :n, :n], torch.eye(n))


def test_every_block_height_matches_reference():
    # The compiled core splits tokens into blocks of 16, then a multiple of 4, then the rest,
    # and has separate loops for narrow bands (T_feats - T_text < 15) and wide ones.
    t_text = torch.arange(1, 41)
    t_feats = t_text + torch.tensor([0, 3, 14, 15, 16, 21, 40, 57] * 5)
    mask = make_mask(t_text, t_feats)
    g = torch.Generator().manual_seed(0)
    value = torch.randn(mask.shape, generator=g).masked_fill(mask == 0, float("-inf"))
    ref, _ = reference_batch(value, t_text, t_feats)
    for name, path in all_paths(value, mask, t_text, t_feats).items():
        assert torch.equal(path, ref), name


def test_ties_stay_on_the_same_token():
    t_text, t_feats = torch.tensor([5, 3]), torch.tensor([12, 9])
    mask = make_mask(t_text, t_feats)
    value = torch.zeros(mask.shape)
    expected = torch.zeros(mask.shape)
    for b, (t, f) in enumerate(zip(t_text.tolist(), t_feats.tolist())):
        for i in range(t - 1):  # all scores tie: earlier tokens take one frame each
            expected[b, i, i] = 1
        expected[b, t - 1, t - 1 : f] = 1
        assert torch.equal(
            torch.from_numpy(reference_path(value[b].numpy(), t, f)[0]), expected[b]
        )
    for name, path in all_paths(value, mask, t_text, t_feats).items():
        assert torch.equal(path, expected), name


def test_quantised_values_float64_same_answer():
    # Values on a 1/8 grid: sums are exact in both precisions and exact ties are frequent.
    value, mask, t_text, t_feats = random_batch(7, B=5, max_text=30, max_feats=70)
    value = (value * 2).round() / 8
    ref, _ = reference_batch(value.double(), t_text, t_feats)
    for name, path in all_paths(value.double(), mask, t_text, t_feats).items():
        assert path.dtype == torch.float64 and torch.equal(path, ref), name
    for name, path in all_paths(value, mask, t_text, t_feats).items():
        assert torch.equal(path.double(), ref), name


def test_float64_random_matches_reference():
    value, mask, t_text, t_feats = random_batch(3, B=4, dtype=torch.float64)
    ref, _ = reference_batch(value, t_text, t_feats)
    for name, path in all_paths(value, mask, t_text, t_feats).items():
        assert torch.equal(path, ref), name


def test_batch_of_one_bool_mask_and_lengths_arguments():
    value, mask, t_text, t_feats = random_batch(5, B=1)
    ref, _ = reference_batch(value, t_text, t_feats)
    assert torch.equal(maximum_path(value, mask.bool()), ref)
    assert torch.equal(
        maximum_path(value, mask, text_lengths=t_text, feats_lengths=t_feats), ref
    )
    assert torch.equal(
        maximum_path(value, None, text_lengths=t_text, feats_lengths=t_feats), ref
    )


def test_non_contiguous_inputs():
    value, mask, t_text, t_feats = random_batch(11)
    ref, _ = reference_batch(value, t_text, t_feats)
    transposed = (
        value.transpose(1, 2).contiguous().transpose(1, 2)
    )  # (B, T, F) view, F-major
    assert not transposed.is_contiguous()
    assert torch.equal(
        maximum_path(transposed, mask.transpose(1, 2).contiguous().transpose(1, 2)), ref
    )
    wide = torch.full(
        (value.shape[0], value.shape[1] + 3, 2 * value.shape[2]), float("nan")
    )
    wide[:, 2:-1, ::2] = value  # strided columns, offset rows
    sliced = wide[:, 2:-1, ::2]
    assert torch.equal(maximum_path(sliced, mask), ref)
    assert torch.equal(maximum_path_torch(sliced, t_text, t_feats), ref)


def test_too_few_frames_names_the_item():
    mask = make_mask([3, 6, 2], [10, 5, 4], T=6, F=10)
    with pytest.raises(ValueError, match=r"item 1 .*T_feats=5 < T_text=6"):
        maximum_path(torch.randn(mask.shape), mask)


def test_returned_paths_are_never_reused_while_alive():
    value, mask, _, _ = random_batch(2)
    first = maximum_path(value, mask)
    kept = first.clone()
    view = first[:, 1:]  # a view alone must keep the memory reserved
    del first
    second = maximum_path(torch.randn(value.shape), mask)
    assert torch.equal(view, kept[:, 1:])
    assert torch.equal(maximum_path(value, mask), kept)
    del view, second


@needs_core
def test_output_memory_is_reused_once_released():
    value, mask, _, _ = random_batch(4)
    first = maximum_path(value, mask)
    ptr = first.data_ptr()
    del first
    assert maximum_path(value, mask).data_ptr() == ptr  # no fresh pages to fault in


def test_fallback_warns_once_and_agrees():
    value, mask, t_text, t_feats = random_batch(13)
    ref, _ = reference_batch(value, t_text, t_feats)
    without_core = search.MaximumPath(None, "simulated")
    assert without_core.backend() == "torch-fallback"
    with pytest.warns(RuntimeWarning, match=r"\(simulated\).*pip install -e"):
        path = without_core(value, mask)
    assert torch.equal(path, ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(without_core(value, mask), ref)  # warned once only
    with pytest.raises(ValueError, match="item 0"):
        without_core(torch.randn(1, 4, 3), torch.ones(1, 4, 3))


@pytest.mark.skipif(not triton_path.available(), reason="Triton not installed")
def test_triton_kernels_in_the_interpreter_match_reference():
    # No GPU here: the CUDA kernels run on CPU tensors through Triton's interpreter.
    t_text, t_feats = torch.tensor([9, 1, 1, 6, 4]), torch.tensor([30, 1, 12, 6, 21])
    mask = make_mask(t_text, t_feats)
    value = torch.randn(mask.shape).masked_fill(mask == 0, float("nan"))
    value[4] = 0.0  # ties
    ref, _ = reference_batch(value, t_text, t_feats)
    assert torch.equal(
        triton_path.maximum_path_triton(value, t_text, t_feats, interpret=True), ref
    )


@needs_core
def test_backend_names_the_compiled_core():
    assert backend().startswith("cython-")


def direct_log_likelihood(z, mean, log_std):
    z, mean, log_std = z.double(), mean.double(), log_std.double()
    diff = z.unsqueeze(2) - mean.unsqueeze(3)  # (B, C, T_text, T_feats)
    ll = (
        -0.5 * math.log(2 * math.pi)
        - log_std.unsqueeze(3)
        - 0.5 * diff**2 * torch.exp(-2 * log_std.unsqueeze(3))
    )
    return ll.sum(1)


def test_log_likelihood_matches_direct_formula():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 80, 50, generator=g, requires_grad=True)
    mean = torch.randn(3, 80, 20, generator=g)
    log_std = torch.randn(3, 80, 20, generator=g) * 0.3
    got = log_likelihood(z, mean, log_std)
    want = direct_log_likelihood(z, mean, log_std)
    assert (
        got.dtype == torch.float32
        and got.shape == (3, 20, 50)
        and not got.requires_grad
    )
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=2e-3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got16 = log_likelihood(z.bfloat16().float(), mean, log_std)
    assert got16.dtype == torch.float32
    torch.testing.assert_close(
        got16.double(),
        direct_log_likelihood(z.bfloat16(), mean, log_std),
        rtol=1e-5,
        atol=2e-3,
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_values_take_the_triton_kernels_and_match_reference():
    # LJSpeech-sized items (up to 400 tokens x 870 frames), ties in one of them.
    value, mask, t_text, t_feats = random_batch(7, B=8, max_text=400, max_feats=870)
    value[3] = torch.where(mask[3] > 0, torch.zeros_like(value[3]), value[3])
    ref, _ = reference_batch(value, t_text, t_feats)
    finder = search.MaximumPath(*search._load_core())
    path = finder(value.cuda(), mask.cuda())
    assert path.device.type == "cuda"
    assert finder.use_triton, "the Triton kernels fell back to the torch path"
    assert torch.equal(path.cpu(), ref)
