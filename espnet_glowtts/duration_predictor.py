# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""Glow-TTS duration predictor: log-durations from the detached text encoding.

Paper: Kim et al., "Glow-TTS: A Generative Flow for Text-to-Speech via Monotonic
Alignment Search", NeurIPS 2020. Facts follow the authors' implementation,
github.com/jaywalnut310/glow-tts (``models.DurationPredictor``).
"""

from typing import Optional

import torch
from torch import nn

from espnet_glowtts.encoder import ChannelLayerNorm


class DurationPredictor(nn.Module):
    """Two [conv -> ReLU -> LayerNorm -> dropout] blocks and a 1x1 projection.

    Args:
        in_channels (int): Text encoding channels.
        filter_channels (int): Conv width.
        kernel_size (int): Conv kernel.
        dropout (float): Dropout rate.
        global_channels (int): Width of the speaker/language vector concatenated to the
            input (0 for none).

    """

    def __init__(
        self,
        in_channels: int,
        filter_channels: int = 256,
        kernel_size: int = 3,
        dropout: float = 0.1,
        global_channels: int = 0,
    ):
        super().__init__()
        padding = kernel_size // 2
        self.conv1 = nn.Conv1d(
            in_channels + global_channels, filter_channels, kernel_size, padding=padding
        )
        self.norm1 = ChannelLayerNorm(filter_channels)
        self.conv2 = nn.Conv1d(
            filter_channels, filter_channels, kernel_size, padding=padding
        )
        self.norm2 = ChannelLayerNorm(filter_channels)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Conv1d(filter_channels, 1, 1)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Predict log-durations.

        Args:
            x (Tensor): Text encoding (B, C, T_text); callers pass it detached so the
                duration loss does not train the encoder.
            mask (Tensor): Valid positions (B, 1, T_text).
            g (Optional[Tensor]): Global conditioning (B, global_channels, 1).

        Returns:
            Tensor: Log-durations (B, 1, T_text), zero at padding.

        """
        if g is not None:
            x = torch.cat([x, g.expand(-1, -1, x.size(-1))], dim=1)
        h = self.dropout(self.norm1(torch.relu(self.conv1(x * mask))))
        h = self.dropout(self.norm2(torch.relu(self.conv2(h * mask))))
        return self.proj(h * mask) * mask
