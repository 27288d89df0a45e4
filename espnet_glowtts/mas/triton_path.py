# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""Monotonic Alignment Search on CUDA with Triton: two kernel launches instead of thousands.

The torch path launches a few kernels per frame; this one runs the whole DP of an item in one
program (one program per item): the running column Q[:, j-1] lives in registers, its shift by
one token goes through a small scratch row, and one decision byte per band cell is stored for
the backtrack, which is a second one-program-per-item kernel. Same operations as the compiled
CPU core (``v + max(up, left)``, strict ``up > left``), so the paths are identical.

Only float32 values; the caller falls back to :mod:`torch_path` otherwise. The kernels are also
run on CPU tensors through Triton's interpreter in the tests.

Paper: Kim et al., "Glow-TTS: A Generative Flow for Text-to-Speech via Monotonic
Alignment Search", NeurIPS 2020. Semantics and tie-breaking of the authors'
``monotonic_align`` (github.com/jaywalnut310/glow-tts).
"""

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # no Triton (CPU-only torch): the torch path is used
    triton = None
    tl = None


if triton is not None:  # the kernels (plain functions; jitted or interpreted below)

    def _forward_kernel(
        value_ptr,
        dec_ptr,
        q_ptr,
        t_text_ptr,
        t_feats_ptr,
        stride_b,
        stride_t,
        stride_f,
        F_pad,
        BLOCK_T: tl.constexpr,
    ):
        b = tl.program_id(0)
        T = tl.load(t_text_ptr + b)
        F = tl.load(t_feats_ptr + b)
        i = tl.arange(0, BLOCK_T)
        neg = float("-inf")
        q = tl.full([BLOCK_T], neg, tl.float32)  # Q[i, j-1]
        scratch = q_ptr + b * (
            BLOCK_T + 1
        )  # scratch[i + 1] = Q[i, j-1]; scratch[0] = row "-1"
        tl.store(scratch, 0.0)  # Q[-1, -1] = 0 makes Q[0, 0] = v[0, 0]
        base = value_ptr + b * stride_b + i * stride_t
        j = 0
        while j < F:  # (a while loop: Triton's interpreter cannot index with a tensor)
            tl.store(scratch + 1 + i, q)
            tl.debug_barrier()
            up = tl.load(scratch + i)  # Q[i-1, j-1]
            tl.debug_barrier()
            if j == 0:
                tl.store(scratch, neg)
            band = (i <= j) & (i >= j - (F - T)) & (i < T)
            v = tl.load(base + j * stride_f, mask=band, other=neg)
            take_up = up > q  # strict: ties stay on the same token
            q = tl.where(band, v + tl.where(take_up, up, q), neg)
            tl.store(
                dec_ptr + (b * F_pad + j) * BLOCK_T + i, take_up.to(tl.int8), mask=band
            )
            j += 1

    def _backtrack_kernel(
        dec_ptr, token_ptr, t_text_ptr, t_feats_ptr, F_pad, BLOCK_T: tl.constexpr
    ):
        b = tl.program_id(0)
        T = tl.load(t_text_ptr + b)
        F = tl.load(t_feats_ptr + b)
        index = T - 1
        j = F - 1
        while j >= 0:
            tl.store(token_ptr + b * F_pad + j, index)
            take_up = tl.load(dec_ptr + (b * F_pad + j) * BLOCK_T + index)
            step = (index != 0) & ((index == j) | (take_up != 0))
            index = index - step.to(tl.int32)
            j -= 1


_KERNELS = {}


def _kernels(interpret: bool):
    if interpret not in _KERNELS:
        if interpret:
            from triton.runtime.interpreter import InterpretedFunction as wrap
        else:
            wrap = triton.jit
        _KERNELS[interpret] = wrap(_forward_kernel), wrap(_backtrack_kernel)
    return _KERNELS[interpret]


def available() -> bool:
    return triton is not None


def maximum_path_triton(
    value: torch.Tensor,
    t_text: torch.Tensor,
    t_feats: torch.Tensor,
    interpret: bool = False,
) -> torch.Tensor:
    """Monotonic alignment search with two Triton kernels.

    Args:
        value: (B, T_text, T_feats) float32 scores on a CUDA device (CPU with ``interpret``).
        t_text: (B,) valid tokens per item, on value's device.
        t_feats: (B,) valid frames per item, ``>= t_text``, on value's device.
        interpret: run the kernels in Triton's interpreter (CPU tensors; for tests).

    Returns:
        (B, T_text, T_feats) float32 0/1 path on value's device.
    """
    B, T, F = value.shape
    device = value.device
    forward, backtrack = _kernels(interpret)
    block_t = max(16, triton.next_power_of_2(T))
    t_text32 = t_text.to(device=device, dtype=torch.int32).contiguous()
    t_feats32 = t_feats.to(device=device, dtype=torch.int32).contiguous()
    valid = (t_text32 > 0) & (t_feats32 > 0)
    t_text32, t_feats32 = (
        t_text32 * valid,
        t_feats32 * valid,
    )  # empty items: nothing to do
    decisions = torch.empty((B, F, block_t), device=device, dtype=torch.int8)
    scratch = torch.empty((B, block_t + 1), device=device, dtype=torch.float32)
    token = torch.empty((B, F), device=device, dtype=torch.int32)
    forward[(B,)](
        value,
        decisions,
        scratch,
        t_text32,
        t_feats32,
        value.stride(0),
        value.stride(1),
        value.stride(2),
        F,
        BLOCK_T=block_t,
    )
    backtrack[(B,)](decisions, token, t_text32, t_feats32, F, BLOCK_T=block_t)
    tok = torch.arange(T, device=device, dtype=torch.int32).view(1, T, 1)
    frm = torch.arange(F, device=device, dtype=torch.int32).view(1, 1, F)
    path = (
        (token.unsqueeze(1) == tok)
        & (frm < t_feats32.view(B, 1, 1))
        & (tok < t_text32.view(B, 1, 1))
    )
    return path.to(value.dtype)
