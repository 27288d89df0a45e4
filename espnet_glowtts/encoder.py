# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""Glow-TTS text encoder: embedding, conv prenet, relative-position transformer, prior.

Paper: Kim et al., "Glow-TTS: A Generative Flow for Text-to-Speech via Monotonic
Alignment Search", NeurIPS 2020. Facts follow the authors' implementation,
github.com/jaywalnut310/glow-tts (``models.TextEncoder``, ``attentions.Encoder``).
ESPnet's ``LayerNorm`` is reused for the channel LayerNorm.
"""

import math
from typing import Optional, Tuple

import torch
from espnet2.legacy.nets.pytorch_backend.transformer.layer_norm import LayerNorm
from torch import nn


class ChannelLayerNorm(LayerNorm):
    """ESPnet's LayerNorm over the channel axis of (B, C, T) tensors, with the authors' eps.

    ESPnet's class fixes eps at 1e-12; the authors' 1e-4 differs visibly on near-silent
    frames. The state dict keeps the names of release 0.1.0 (``gamma``, ``beta``), so models
    packed by it load unchanged (``named_parameters`` gives ESPnet's ``weight``, ``bias``).

    Args:
        channels (int): Channels C.
        eps (float): Added to the variance (1e-4, the authors' value).

    """

    _SAVED_NAMES = (("weight", "gamma"), ("bias", "beta"))

    def __init__(self, channels: int, eps: float = 1e-4):
        super().__init__(channels, dim=1)
        self.eps = eps

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for name, saved in self._SAVED_NAMES:
            destination[prefix + saved] = destination.pop(prefix + name)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name, saved in self._SAVED_NAMES:
            if prefix + saved in state_dict:
                state_dict[prefix + name] = state_dict.pop(prefix + saved)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class ConvPrenet(nn.Module):
    """Residual conv stack before the transformer; starts as the identity.

    Args:
        channels (int): Input and output channels.
        num_layers (int): [conv -> LayerNorm -> ReLU -> dropout] layers.
        kernel_size (int): Conv kernel.
        dropout (float): Dropout rate.

    """

    def __init__(
        self,
        channels: int,
        num_layers: int = 3,
        kernel_size: int = 5,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
            for _ in range(num_layers)
        )
        self.norms = nn.ModuleList(
            ChannelLayerNorm(channels) for _ in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Conv1d(channels, channels, 1)
        # Zero output projection: training starts from the plain embedding.
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Add the conv stack's output to the embedded tokens.

        Args:
            x (Tensor): Embedded tokens (B, channels, T_text).
            mask (Tensor): Valid positions (B, 1, T_text).

        Returns:
            Tensor: Output (B, channels, T_text), zero at padding.

        """
        h = x
        for conv, norm in zip(self.convs, self.norms):
            h = self.dropout(torch.relu(norm(conv(h * mask))))
        return (x + self.proj(h)) * mask


class RelativeSelfAttention(nn.Module):
    """Multi-head self-attention with relative positions (Shaw et al.) for keys and values.

    Offsets beyond ``window_size`` get no relative term; the 2 * window_size + 1 embeddings
    are shared across heads.

    Args:
        channels (int): Input and output channels.
        num_heads (int): Heads (``channels`` must be divisible by it).
        window_size (int): Largest relative offset with its own embedding.
        dropout (float): Dropout on the attention weights.

    """

    def __init__(
        self, channels: int, num_heads: int, window_size: int = 4, dropout: float = 0.0
    ):
        super().__init__()
        if channels % num_heads != 0:
            raise ValueError(
                f"channels ({channels}) must be divisible by num_heads "
                f"({num_heads})"
            )
        self.num_heads = num_heads
        self.head_channels = channels // num_heads
        self.window_size = window_size
        self.query = nn.Conv1d(channels, channels, 1)
        self.key = nn.Conv1d(channels, channels, 1)
        self.value = nn.Conv1d(channels, channels, 1)
        self.out = nn.Conv1d(channels, channels, 1)
        for conv in (self.query, self.key, self.value):
            nn.init.xavier_uniform_(conv.weight)
        std = self.head_channels**-0.5
        self.rel_key = nn.Parameter(
            torch.randn(2 * window_size + 1, self.head_channels) * std
        )
        self.rel_value = nn.Parameter(
            torch.randn(2 * window_size + 1, self.head_channels) * std
        )
        self.dropout = nn.Dropout(dropout)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pair_mask=None
    ) -> torch.Tensor:
        """Scaled dot-product attention with the relative key and value terms.

        The relative terms live on the 2 * window_size + 1 diagonals around each query:
        the relative key scores (T, 2w+1) are skewed onto those diagonals of the (T, T)
        scores, and the weights on them are skewed back for the relative values, each by a
        pad and two reshapes (the authors' relative-to-absolute trick, kept to the window).

        Args:
            q, k, v (Tensor): Queries (scaled), keys, values (..., T, D).
            pair_mask (Optional[Tensor]): Valid (query, key) pairs, broadcastable to
                (..., T, T); None when every pair is valid.

        Returns:
            Tensor: Attended values (..., T, D).

        """
        w, t = self.window_size, q.size(-2)
        # (..., T, 2w+1): column o holds offset o - w
        band = q @ self.rel_key.t().to(q.dtype)
        lead = band.shape[:-2]
        # row i shifted right by i, then the columns of keys 0..T-1: (..., T, T)
        rows = nn.functional.pad(band, (0, t)).reshape(*lead, -1)
        rows = rows[..., : t * (t + 2 * w)].view(*lead, t, t + 2 * w)
        scores = q @ k.transpose(-2, -1) + rows[..., w : w + t]
        if pair_mask is not None:
            scores = scores.masked_fill(~pair_mask, -1e4)
        weights = self.dropout(torch.softmax(scores, dim=-1))
        # the inverse: row i shifted left by i, keeping its 2w + 1 offsets
        offsets = nn.functional.pad(weights, (w, w)).reshape(*lead, -1)
        offsets = nn.functional.pad(offsets, (0, t)).view(*lead, t, t + 2 * w + 1)
        return weights @ v + offsets[..., : 2 * w + 1] @ self.rel_value.to(v.dtype)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Attend within each sequence.

        Args:
            x (Tensor): Input (B, C, T).
            mask (Optional[Tensor]): Valid positions (B, 1, T); None when all are valid
                (no mask is built, as for the exported graph).

        Returns:
            Tensor: Output (B, C, T).

        """
        batch, channels, length = x.shape

        def heads(t):
            return t.view(batch, self.num_heads, self.head_channels, length).transpose(
                2, 3
            )

        q = heads(self.query(x)) * self.head_channels**-0.5  # (B, H, T, D)
        k, v = heads(self.key(x)), heads(self.value(x))
        pair_mask = (
            None if mask is None else (mask.unsqueeze(-1) * mask.unsqueeze(-2)) > 0
        )  # (B, 1, T, T)
        out = self.attend(q, k, v, pair_mask)
        out = out.transpose(2, 3).reshape(batch, channels, length)
        return self.out(out)


class FeedForward(nn.Module):
    """Two convolutions with ReLU, as the transformer's position-wise network.

    Args:
        channels (int): Input and output channels.
        filter_channels (int): Hidden channels.
        kernel_size (int): Conv kernel.
        dropout (float): Dropout rate.

    """

    def __init__(
        self, channels: int, filter_channels: int, kernel_size: int, dropout: float
    ):
        super().__init__()
        padding = kernel_size // 2
        self.conv1 = nn.Conv1d(channels, filter_channels, kernel_size, padding=padding)
        self.conv2 = nn.Conv1d(filter_channels, channels, kernel_size, padding=padding)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Apply conv -> ReLU -> dropout -> conv at every position.

        Args:
            x (Tensor): Input (B, channels, T_text).
            mask (Tensor): Valid positions (B, 1, T_text).

        Returns:
            Tensor: Output (B, channels, T_text), zero at padding.

        """
        h = self.dropout(torch.relu(self.conv1(x * mask)))
        return self.conv2(h * mask) * mask


class TextEncoder(nn.Module):
    """Token embedding -> prenet -> post-LN transformer -> prior statistics.

    Args:
        idim (int): Vocabulary size.
        odim (int): Feature dimension of the prior (mel bins).
        hidden_channels (int): Embedding and attention width.
        filter_channels (int): Feed-forward width.
        num_heads (int): Attention heads.
        num_layers (int): Transformer layers.
        kernel_size (int): Feed-forward conv kernel.
        dropout (float): Dropout in attention and feed-forward blocks.
        window_size (int): Relative-position window.
        use_prenet (bool): Whether to use the conv prenet.
        mean_only (bool): Fix the prior log-std at 0 instead of predicting it.

    """

    def __init__(
        self,
        idim: int,
        odim: int,
        hidden_channels: int = 192,
        filter_channels: int = 768,
        num_heads: int = 2,
        num_layers: int = 6,
        kernel_size: int = 3,
        dropout: float = 0.1,
        window_size: int = 4,
        use_prenet: bool = True,
        mean_only: bool = True,
    ):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.embedding = nn.Embedding(idim, hidden_channels)
        nn.init.normal_(self.embedding.weight, 0.0, hidden_channels**-0.5)
        self.prenet = ConvPrenet(hidden_channels) if use_prenet else None
        self.attentions = nn.ModuleList(
            RelativeSelfAttention(hidden_channels, num_heads, window_size, dropout)
            for _ in range(num_layers)
        )
        self.feed_forwards = nn.ModuleList(
            FeedForward(hidden_channels, filter_channels, kernel_size, dropout)
            for _ in range(num_layers)
        )
        self.norms1 = nn.ModuleList(
            ChannelLayerNorm(hidden_channels) for _ in range(num_layers)
        )
        self.norms2 = nn.ModuleList(
            ChannelLayerNorm(hidden_channels) for _ in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.proj_mean = nn.Conv1d(hidden_channels, odim, 1)
        self.proj_log_std = None if mean_only else nn.Conv1d(hidden_channels, odim, 1)

    def forward(
        self, text: torch.Tensor, mask: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode tokens.

        Args:
            text (LongTensor): Token ids (B, T_text).
            mask (Tensor): Valid positions (B, 1, T_text).

        Returns:
            Tensor: Hidden states (B, hidden_channels, T_text).
            Tensor: Prior mean (B, odim, T_text).
            Tensor: Prior log-std (B, odim, T_text).

        """
        x = self.embedding(text).transpose(1, 2) * math.sqrt(self.hidden_channels)
        x = x * mask
        if self.prenet is not None:
            x = self.prenet(x, mask)
        for attention, feed_forward, norm1, norm2 in zip(
            self.attentions, self.feed_forwards, self.norms1, self.norms2
        ):
            x = norm1(x + self.dropout(attention(x * mask, mask)))
            x = norm2(x + self.dropout(feed_forward(x, mask)))
        x = x * mask
        mean = self.proj_mean(x) * mask
        if self.proj_log_std is None:
            log_std = torch.zeros_like(mean)
        else:
            log_std = self.proj_log_std(x) * mask
        return x, mean, log_std
