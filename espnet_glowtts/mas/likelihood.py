# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""The value matrix of MAS: log-likelihood of every frame under every token's Gaussian.

Paper: Kim et al., "Glow-TTS: A Generative Flow for Text-to-Speech via Monotonic
Alignment Search", NeurIPS 2020. Same value as the authors' ``models.FlowGenerator``
(github.com/jaywalnut310/glow-tts), computed in one matmul.
"""

import math

import torch

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@torch.no_grad()
def log_likelihood(
    z: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor
) -> torch.Tensor:
    """Log-density of each frame under each token's diagonal Gaussian, summed over channels.

    ``value[b, i, j] = sum_c log N(z[b, c, j]; mean[b, c, i], exp(log_std[b, c, i]))``. Expanding
    the square, with ``p = exp(-2 log_std)``::

        value[i, j] = sum_c (-0.5 log(2 pi) - log_std - 0.5 mean^2 p)[c, i]   (per token)
                    + sum_c (mean p)[c, i] z[c, j] - 0.5 sum_c p[c, i] z[c, j]^2

    so the whole matrix is one batched matmul of ``[mean p, -0.5 p, const]`` (B, T_text, 2C+1)
    with ``[z, z^2, 1]`` (B, 2C+1, T_feats); no (B, C, T_text, T_feats) tensor is formed and the
    output is written once. Computed in float32 with autocast disabled, without gradients.

    Args:
        z: (B, C, T_feats) latent frames.
        mean: (B, C, T_text) token means.
        log_std: (B, C, T_text) token log standard deviations.

    Returns:
        (B, T_text, T_feats) float32 value matrix on z's device. Padding frames/tokens get
        finite but meaningless values; MAS ignores them through its mask.
    """
    with torch.autocast(device_type=z.device.type, enabled=False):
        z = z.detach().float()
        mean = mean.detach().float()
        log_std = log_std.detach().float()
        B, C, F = z.shape
        prec = torch.exp(-2.0 * log_std)  # (B, C, T_text)
        mp = mean * prec
        const = (
            -_HALF_LOG_2PI * C
            - log_std.sum(1, keepdim=True)
            - 0.5 * (mean * mp).sum(1, keepdim=True)
        )  # (B, 1, T_text)
        left = torch.cat([mp, -0.5 * prec, const], dim=1)  # (B, 2C+1, T_text)
        right = torch.cat([z, z * z, z.new_ones(B, 1, F)], dim=1)  # (B, 2C+1, T_feats)
        return torch.bmm(left.transpose(1, 2), right)
