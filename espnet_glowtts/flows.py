# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""Glow-TTS flow decoder: squeeze, then blocks of ActNorm, 1x1 conv and affine coupling.

Every flow maps ``x -> z`` in the forward (training) direction and returns the log-determinant
of that map per utterance; ``reverse=True`` applies the inverse (synthesis).

Paper: Kim et al., "Glow-TTS: A Generative Flow for Text-to-Speech via Monotonic
Alignment Search", NeurIPS 2020. Facts follow the authors' implementation,
github.com/jaywalnut310/glow-tts (``models.FlowSpecDecoder``, ``modules.ActNorm``,
``modules.InvConvNear``, ``attentions.CouplingBlock``, ``modules.WN``).
"""

from typing import Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from espnet_glowtts.memory_efficient import invertible_flows
from espnet_glowtts.packing import packed_call
from espnet_glowtts.tensor_utils import cached_tensor


class ActNorm(nn.Module):
    """Per-channel affine flow with data-dependent initialisation.

    On the first training batch, scale and bias are set so that the output of every channel
    is zero-mean and unit-variance over the valid frames (of all ranks, in distributed
    training). ``initialized`` is a buffer, so a loaded checkpoint never re-initialises.

    Args:
        channels (int): Channels of the input.

    """

    def __init__(self, channels: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        # Statistics are summed over all ranks: every process must start from the same
        # parameters, and DDP broadcasts them only once, before this first batch.
        moments = torch.cat(
            [
                mask.sum().view(1),
                (x * mask).sum(dim=(0, 2)),
                (x * x * mask).sum(dim=(0, 2)),
            ]
        ).float()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(moments)
        count, sums, squares = moments[0].clamp_min(1.0), *moments[1:].chunk(2)
        mean = sums / count
        log_std = 0.5 * torch.log((squares / count - mean**2).clamp_min(1e-6))
        self.log_scale.copy_(-log_std.view_as(self.log_scale))
        self.bias.copy_((-mean * torch.exp(-log_std)).view_as(self.bias))
        self.initialized.fill_(True)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, reverse: bool = False, **_
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Apply ``exp(log_scale) * x + bias`` per channel (or its inverse).

        Args:
            x (Tensor): Input (B, channels, T).
            mask (Tensor): Valid frames (B, 1, T).
            reverse (bool): Apply the inverse (synthesis direction).

        Returns:
            Tensor: Output (B, channels, T), zero at padding.
            Optional[Tensor]: Log-determinant (B,) in the forward direction, else None.

        """
        if self.training and not reverse and not bool(self.initialized):
            self._initialize(x, mask)
        if reverse:
            return (x - self.bias) * torch.exp(-self.log_scale) * mask, None
        logdet = self.log_scale.sum() * mask.sum(dim=(1, 2))
        return (self.bias + torch.exp(self.log_scale) * x) * mask, logdet


class InvertibleConv1x1(nn.Module):
    """Invertible 1x1 convolution shared over channel groups.

    Channels are split into groups of ``group_size`` (half from each coupling half, so the
    coupling's split keeps mixing), and one ``group_size x group_size`` matrix, initialised
    orthogonal, is applied to every group.

    Args:
        channels (int): Channels of the input, a multiple of ``group_size``.
        group_size (int): Channels mixed by one matrix (even).

    """

    def __init__(self, channels: int, group_size: int = 4):
        super().__init__()
        if channels % group_size != 0 or group_size % 2 != 0:
            raise ValueError(
                f"channels ({channels}) must be a multiple of group_size "
                f"({group_size}), which must be even"
            )
        self.channels = channels
        self.group_size = group_size
        weight = torch.linalg.qr(torch.randn(group_size, group_size))[0]
        if torch.det(weight) < 0:
            weight[:, 0] = -weight[:, 0]
        self.weight = nn.Parameter(weight)

    def _to_groups(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        g = self.group_size
        x = x.view(b, 2, c // g, g // 2, t).permute(0, 1, 3, 2, 4)
        return x.reshape(b, g, c // g, t)

    def _from_groups(self, x: torch.Tensor) -> torch.Tensor:
        b, g, n, t = x.shape
        x = x.view(b, 2, g // 2, n, t).permute(0, 1, 3, 2, 4)
        return x.reshape(b, self.channels, t)

    def inverse_weight(self) -> torch.Tensor:
        """Inverse matrix, cached at inference until the weight changes."""
        return cached_tensor(
            self,
            "inverse",
            [self.weight],
            lambda: torch.linalg.inv(self.weight.float()),
        )

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, reverse: bool = False, **_
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Mix the channels of every group with the weight (or its inverse).

        Args:
            x (Tensor): Input (B, channels, T).
            mask (Tensor): Valid frames (B, 1, T).
            reverse (bool): Apply the inverse matrix (synthesis direction).

        Returns:
            Tensor: Output (B, channels, T), zero at padding.
            Optional[Tensor]: Log-determinant (B,) in the forward direction, else None.

        """
        weight = self.inverse_weight() if reverse else self.weight
        z = torch.einsum("ij,bjnt->bint", weight.to(x.dtype), self._to_groups(x))
        z = self._from_groups(z) * mask
        if reverse:
            return z, None
        logdet = torch.slogdet(self.weight.float())[1] * (
            self.channels // self.group_size
        )
        return z, logdet * mask.sum(dim=(1, 2))


class WeightNormConv1d(nn.Conv1d):
    """Conv1d with weight normalisation (``w = g * v / ||v||``, norm per output channel).

    At inference the normalised weight is computed once and reused until ``v`` or ``g``
    change (no state-dict change, unlike removing the parametrisation).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        weight = self.weight.detach()
        del self.weight
        self.weight_v = nn.Parameter(weight.clone())
        self.weight_g = nn.Parameter(weight.norm(dim=(1, 2), keepdim=True))

    def normalized_weight(self) -> torch.Tensor:
        # torch's fused kernel, as torch.nn.utils.weight_norm (the authors') uses: its
        # backward is several times faster than that of the same formula in separate ops.
        return cached_tensor(
            self,
            "weight",
            [self.weight_v, self.weight_g],
            lambda: torch._weight_norm(self.weight_v, self.weight_g, 0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve with the normalised weight.

        Args:
            x (Tensor): Input (B, in_channels, T).

        Returns:
            Tensor: Output (B, out_channels, T') as ``nn.Conv1d`` gives it.

        """
        return self._conv_forward(x, self.normalized_weight(), self.bias)


class WaveNet(nn.Module):
    """Non-causal WaveNet stack: dilated convs, gated tanh * sigmoid, residual + skip.

    The authors' ``modules.WN``. ESPnet's ``espnet2.gan_tts.wavenet.WaveNet`` (VITS's
    couplings) gives the same eval-mode output for the same weights (``bench/reuse.py``) but
    is kept out: it applies dropout to each layer's input instead of the gated activations
    (other training), computes an unused residual half in its last layer, and names and
    shapes its parameters differently (release 0.1.0 checkpoints would need remapping).

    Args:
        channels (int): Hidden channels.
        kernel_size (int): Kernel of the dilated convs (odd).
        dilation_rate (int): Layer ``i`` has dilation ``dilation_rate ** i``.
        num_layers (int): Layers.
        global_channels (int): Global conditioning width (0 for none).
        dropout (float): Dropout on the gated activations.

    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        dilation_rate: int,
        num_layers: int,
        global_channels: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.channels = channels
        self.num_layers = num_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(num_layers):
            dilation = dilation_rate**i
            self.in_layers.append(
                WeightNormConv1d(
                    channels,
                    2 * channels,
                    kernel_size,
                    dilation=dilation,
                    padding=(kernel_size * dilation - dilation) // 2,
                )
            )
            out = 2 * channels if i < num_layers - 1 else channels
            self.res_skip_layers.append(WeightNormConv1d(channels, out, 1))
        self.cond_layer = (
            WeightNormConv1d(global_channels, 2 * channels * num_layers, 1)
            if global_channels > 0
            else None
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Run the stack.

        Args:
            x (Tensor): Input (B, channels, T).
            mask (Tensor): Valid frames (B, 1, T).
            g (Optional[Tensor]): Global conditioning (B, global_channels, 1).

        Returns:
            Tensor: Sum of skip outputs (B, channels, T).

        """
        skip = torch.zeros_like(x)
        cond = (
            self.cond_layer(g)
            if (g is not None and self.cond_layer is not None)
            else None
        )
        c = self.channels
        for i, (in_layer, res_skip_layer) in enumerate(
            zip(self.in_layers, self.res_skip_layers)
        ):
            h = in_layer(x)
            if cond is not None:
                h = h + cond[:, 2 * c * i : 2 * c * (i + 1)]
            # split, not slicing: its backward is one cat, a slice's a zero-filled copy each
            h_tanh, h_sigmoid = h.split(c, dim=1)
            h = self.dropout(torch.tanh(h_tanh) * torch.sigmoid(h_sigmoid))
            res_skip = res_skip_layer(h)
            if i < self.num_layers - 1:
                res, skip_i = res_skip.split(c, dim=1)
                x = (x + res) * mask
                skip = skip + skip_i
            else:
                skip = skip + res_skip
        return skip * mask


def bounded_log_scale(logs: torch.Tensor, sigmoid_scale: bool) -> torch.Tensor:
    """A coupling's log-scale as used: log(sigmoid(logs + 2)) when ``sigmoid_scale``."""
    return torch.log(1e-6 + torch.sigmoid(logs + 2)) if sigmoid_scale else logs


class AffineCoupling(nn.Module):
    """Affine coupling: the first half of the channels predicts (m, logs) for the second.

    z_b = m(x_a) + exp(logs(x_a)) * x_b; the output projection starts at zero, so each
    coupling starts as the identity.

    Args:
        channels (int): Channels of the input.
        hidden_channels (int): WaveNet width.
        kernel_size (int): WaveNet kernel.
        dilation_rate (int): WaveNet dilation growth.
        num_layers (int): WaveNet layers.
        global_channels (int): Global conditioning width (0 for none).
        dropout (float): WaveNet dropout.
        sigmoid_scale (bool): Bound the scales with a sigmoid.

    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        num_layers: int,
        global_channels: int = 0,
        dropout: float = 0.0,
        sigmoid_scale: bool = False,
    ):
        super().__init__()
        half = channels // 2
        self.sigmoid_scale = sigmoid_scale
        self.start = WeightNormConv1d(half, hidden_channels, 1)
        self.wavenet = WaveNet(
            hidden_channels,
            kernel_size,
            dilation_rate,
            num_layers,
            global_channels,
            dropout,
        )
        self.end = nn.Conv1d(hidden_channels, 2 * (channels - half), 1)
        self.pack_batch = False  # set by FlowDecoder: WaveNet on valid frames only
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)

    def scale_shift(
        self, x_a: torch.Tensor, mask: torch.Tensor, g: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Shift m and log-scale logs (B, C/2, T) that the first half x_a predicts."""
        h = self.start(x_a) * mask
        h = (
            packed_call(self.wavenet, h, mask, g)
            if self.pack_batch
            else self.wavenet(h, mask, g)
        )
        m, logs = self.end(h).chunk(2, dim=1)
        return m, bounded_log_scale(logs, self.sigmoid_scale)

    @staticmethod
    def affine(
        x_b: torch.Tensor,
        m: torch.Tensor,
        logs: torch.Tensor,
        mask: torch.Tensor,
        reverse: bool = False,
    ) -> torch.Tensor:
        """z_b = m + exp(logs) * x_b (or its inverse), zero at padded frames."""
        if reverse:
            return (x_b - m) * torch.exp(-logs) * mask
        return (m + torch.exp(logs) * x_b) * mask

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        reverse: bool = False,
        g: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Transform the second half of the channels conditioned on the first.

        Args:
            x (Tensor): Input (B, channels, T).
            mask (Tensor): Valid frames (B, 1, T).
            reverse (bool): Apply the inverse (synthesis direction).
            g (Optional[Tensor]): Global conditioning (B, global_channels, 1).

        Returns:
            Tensor: Output (B, channels, T); the first half is ``x``'s, unchanged.
            Optional[Tensor]: Log-determinant (B,) in the forward direction, else None.

        """
        half = x.size(1) // 2
        x_a, x_b = x[:, :half], x[:, half:]
        m, logs = self.scale_shift(x_a, mask, g)
        z = torch.cat([x_a, self.affine(x_b, m, logs, mask, reverse)], dim=1)
        return z, None if reverse else (logs * mask).sum(dim=(1, 2))


def squeeze(
    x: torch.Tensor, mask: torch.Tensor, factor: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fold ``factor`` consecutive frames into channels: (B, C, T) -> (B, C*factor, T/factor).

    T must be a multiple of ``factor``. A folded frame is valid when its last frame was.

    Args:
        x (Tensor): Input (B, C, T).
        mask (Tensor): Valid frames (B, 1, T).
        factor (int): Frames folded into one.

    Returns:
        Tensor: Folded input (B, C * factor, T / factor), zero at padding.
        Tensor: Folded mask (B, 1, T / factor).

    """
    b, c, t = x.shape
    x = x.view(b, c, t // factor, factor).permute(0, 3, 1, 2).reshape(b, c * factor, -1)
    mask = mask[:, :, factor - 1 :: factor]
    return x * mask, mask


def unsqueeze(
    x: torch.Tensor, mask: torch.Tensor, factor: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`squeeze`.

    Args:
        x (Tensor): Folded input (B, C * factor, T / factor).
        mask (Tensor): Folded mask (B, 1, T / factor).
        factor (int): Frames folded into one.

    Returns:
        Tensor: Output (B, C, T), zero at padding.
        Tensor: Mask (B, 1, T).

    """
    b, c, t = x.shape
    x = (
        x.view(b, factor, c // factor, t)
        .permute(0, 2, 3, 1)
        .reshape(b, c // factor, -1)
    )
    mask = mask.unsqueeze(-1).expand(-1, -1, -1, factor).reshape(b, 1, -1)
    return x * mask, mask


class FlowDecoder(nn.Module):
    """Squeeze -> ``num_blocks`` x [ActNorm, InvertibleConv1x1, AffineCoupling] -> unsqueeze.

    Args:
        channels (int): Feature channels (mel bins).
        hidden_channels (int): WaveNet width in the couplings.
        kernel_size (int): WaveNet kernel.
        dilation_rate (int): WaveNet dilation growth.
        num_blocks (int): Flow blocks.
        num_layers (int): WaveNet layers per coupling.
        dropout (float): WaveNet dropout.
        group_size (int): Channel group of the 1x1 conv.
        squeeze_factor (int): Frames folded into channels.
        sigmoid_scale (bool): Bound coupling scales with a sigmoid.
        global_channels (int): Speaker/language conditioning width (0 for none).
        pack_batch (bool): Run the couplings' WaveNets on the valid frames only, the
            utterances laid end to end (``packing.py``; exact, pays on unsorted batches).
        memory_efficient (bool): In training, recompute the flows' activations from their
            outputs in backward instead of storing them (see ``memory_efficient.py``).

    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int = 192,
        kernel_size: int = 5,
        dilation_rate: int = 1,
        num_blocks: int = 12,
        num_layers: int = 4,
        dropout: float = 0.05,
        group_size: int = 4,
        squeeze_factor: int = 2,
        sigmoid_scale: bool = False,
        global_channels: int = 0,
        memory_efficient: bool = False,
        pack_batch: bool = False,
    ):
        super().__init__()
        self.squeeze_factor = squeeze_factor
        self.memory_efficient = memory_efficient
        folded = channels * squeeze_factor
        self.flows = nn.ModuleList()
        for _ in range(num_blocks):
            self.flows.append(ActNorm(folded))
            self.flows.append(InvertibleConv1x1(folded, group_size))
            self.flows.append(
                AffineCoupling(
                    folded,
                    hidden_channels,
                    kernel_size,
                    dilation_rate,
                    num_layers,
                    global_channels,
                    dropout,
                    sigmoid_scale,
                )
            )
            self.flows[-1].pack_batch = pack_batch

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        g: Optional[torch.Tensor] = None,
        reverse: bool = False,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Map features to latents (or back with ``reverse=True``).

        Args:
            x (Tensor): Features or latents (B, channels, T), T a multiple of the squeeze.
            mask (Tensor): Valid frames (B, 1, T).
            g (Optional[Tensor]): Global conditioning (B, global_channels, 1).
            reverse (bool): Run the inverse (synthesis) direction.

        Returns:
            Tensor: Output (B, channels, T).
            Optional[Tensor]: Total log-determinant (B,) in the forward direction.

        """
        x, folded_mask = squeeze(x, mask, self.squeeze_factor)
        if self.memory_efficient and not reverse and torch.is_grad_enabled():
            x, logdet_total = invertible_flows(self.flows, x, folded_mask, g)
            return unsqueeze(x, folded_mask, self.squeeze_factor)[0], logdet_total
        logdet_total = None if reverse else x.new_zeros(x.size(0))
        for flow in (reversed(self.flows) if reverse else self.flows):
            x, logdet = flow(x, folded_mask, reverse=reverse, g=g)
            if logdet is not None:
                logdet_total = logdet_total + logdet
        x, _ = unsqueeze(x, folded_mask, self.squeeze_factor)
        return x, logdet_total
