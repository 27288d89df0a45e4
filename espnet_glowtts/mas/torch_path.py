# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""Monotonic Alignment Search in plain torch, for CUDA tensors and as the CPU fallback.

One frame per step, vectorised over the batch and the tokens: column j of the DP needs only
column j-1, ``Q[:, i, j] = v[:, i, j] + max(Q[:, i, j-1], Q[:, i-1, j-1])``. Cells off the band
(and padding, which may hold NaN/inf) are replaced by -inf once, so they never win a maximum.
The arithmetic is the compiled core's (same dtype, same operations), so the paths are identical.

Paper: Kim et al., "Glow-TTS: A Generative Flow for Text-to-Speech via Monotonic
Alignment Search", NeurIPS 2020. Semantics and tie-breaking of the authors'
``monotonic_align`` (github.com/jaywalnut310/glow-tts).
"""

import torch


def maximum_path_torch(
    value: torch.Tensor, t_text: torch.Tensor, t_feats: torch.Tensor
) -> torch.Tensor:
    """Monotonic alignment search on the tensors' own device.

    Args:
        value: (B, T_text, T_feats) float32 or float64 scores.
        t_text: (B,) int64 valid tokens per item (on value's device).
        t_feats: (B,) int64 valid frames per item, ``>= t_text`` (on value's device).

    Returns:
        (B, T_text, T_feats) 0/1 path, value's dtype and device.
    """
    B, T, F = value.shape
    device, dtype = value.device, value.dtype
    if B == 0 or T == 0 or F == 0:
        return torch.zeros_like(value)
    tok = torch.arange(T, device=device).view(1, T, 1)
    frm = torch.arange(F, device=device).view(1, 1, F)
    t_text = t_text.view(B, 1, 1)
    t_feats = t_feats.view(B, 1, 1)
    valid = (t_text > 0) & (t_feats > 0)
    band = (
        (tok <= frm)
        & (tok >= frm - (t_feats - t_text))
        & (tok < t_text)
        & (frm < t_feats)
        & valid
    )
    v = (
        value.detach().masked_fill(~band, float("-inf")).permute(2, 0, 1).contiguous()
    )  # (F, B, T)

    # q[:, r + 1] = Q[r, j - 1]; q[:, 0] is the row above token 0 (0 before frame 0, then -inf).
    q = torch.full((B, T + 1), float("-inf"), device=device, dtype=dtype)
    q[:, 0] = 0
    from_prev = torch.empty((F, B, T), device=device, dtype=torch.bool)
    for j in range(F):
        up, left = q[:, :-1], q[:, 1:]
        torch.gt(up, left, out=from_prev[j])  # strict: ties stay on the same token
        new = torch.maximum(up, left).add_(v[j])
        q[:, 1:] = new
        if j == 0:
            q[:, 0] = float("-inf")

    # Backtrack from the last token at the last frame; index[b] = token of frame j.
    index = (t_text.view(B) - 1).clamp_(min=0)
    ends = t_feats.view(B)
    rows = torch.arange(B, device=device)
    token_of_frame = torch.empty((B, F), device=device, dtype=torch.long)
    for j in range(F - 1, -1, -1):
        token_of_frame[:, j] = index
        active = ends > j
        step = from_prev[j, rows, index] | (index == j)
        index = index - (active & step & (index > 0)).long()
    path = (
        (token_of_frame.unsqueeze(1) == tok) & (tok < t_text) & (frm < t_feats) & valid
    )
    return path.to(dtype)
