"""Glow-TTS inference as two ONNX graphs, with the numpy step between them.

* ``encoder.onnx``: tokens (blanks already interspersed) -> prior mean and log-std per
  token, and the rounded durations ``ceil(exp(logw) * length_scale)``.
* numpy (``espnet_glowtts.runtime.synthesizer.expand_prior``): the squeeze rounding and the
  hard alignment path, as a repeat of each token's prior over its frames (linear in length).
* ``decoder.onnx``: z = mean + exp(log_std) * noise * noise_scale, then the flows inverted.

Both graphs take one utterance (batch 1, no padding), so the masks are all ones. Weight norm
is folded into plain convolutions, and each block's inverse 1x1 convolution and inverse
ActNorm are baked into one constant 1x1 convolution: nothing is inverted at run time (the
step that ``torch.linalg.inv`` has no ONNX operator for).

The k-tap convolutions of the couplings and of the encoder's feed-forward networks are
written as Winograd's minimal filtering F(m, k) (Lavin and Gray, "Fast Algorithms for
Convolutional Neural Networks", CVPR 2016), in one dimension: each tile of m outputs takes
m + k - 1 products in a transformed domain instead of m * k, so their matrix work drops
3x at k = 5 (F(6, 5)) and 2.4x at k = 3 (F(8, 3)). The transforms are constants folded
from the weights in float64; the products run as batched MatMuls on (1, C, T) sequences
(``_WinogradConv``, ``_CouplingWinograd``). Each coupling's skip sum and output layer are
folded into one product. What it cannot tile (dilated WaveNets, even
kernels), and ``winograd=False``, get the direct form instead: 4-D (1, C, 1, T) convolutions with each gated layer's halves
separate, which onnxruntime runs in its channel-blocked layout with the activations fused
(its NCHWc transformer, for 4-D convolutions only). int8 quantization starts from the
direct form. The attention is exported without masks. Speed: bench/RESULTS.md, section 4.
"""

import copy
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from torch import nn

from espnet_glowtts.encoder import (
    ChannelLayerNorm,
    FeedForward,
    RelativeSelfAttention,
)
from espnet_glowtts.flows import (
    ActNorm,
    AffineCoupling,
    InvertibleConv1x1,
    WeightNormConv1d,
    bounded_log_scale,
    squeeze,
    unsqueeze,
)
from espnet_glowtts.glow_tts import GlowTTS

OPSET = 17


def _replace(module: nn.Module, kind: type, make) -> nn.Module:
    """Replace every ``kind`` below ``module`` by ``make(it)``."""
    for name, child in list(module.named_children()):
        if isinstance(child, kind):
            setattr(module, name, make(child))
        else:
            _replace(child, kind, make)
    return module


def _folded(conv: WeightNormConv1d) -> nn.Conv1d:
    """A plain Conv1d holding the normalised weight."""
    plain = nn.Conv1d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        plain.weight.copy_(conv.normalized_weight())
        if conv.bias is not None:
            plain.bias.copy_(conv.bias)
    return plain


def _static_layer_norms(module: nn.Module) -> nn.Module:
    """Give each ChannelLayerNorm a normalised shape the tracer sees as a constant."""
    for norm in module.modules():
        if isinstance(norm, ChannelLayerNorm):

            def forward(x, norm=norm):
                y = torch.nn.functional.layer_norm(
                    x.transpose(1, -1),
                    norm.weight.shape,
                    norm.weight,
                    norm.bias,
                    norm.eps,
                )
                return y.transpose(1, -1)

            norm.forward = forward
    return module


def _conv4d(conv: nn.Conv1d, rows: slice = slice(None), cols: slice = slice(None)):
    """A (1, k) Conv2d computing ``conv``'s output channels ``rows`` from input ``cols``.

    onnxruntime lays 4-D convolutions out in channel blocks (its NCHWc transformer) and
    fuses their activations and sums; 3-D ones run unblocked.
    """
    weight = conv.weight[rows, cols]
    out = nn.Conv2d(
        weight.size(1),
        weight.size(0),
        (1, conv.kernel_size[0]),
        padding=(0, conv.padding[0]),
        dilation=(1, conv.dilation[0]),
        bias=conv.bias is not None and cols == slice(None),
    )
    with torch.no_grad():
        out.weight.copy_(weight[:, :, None])
        if out.bias is not None:
            out.bias.copy_(conv.bias[rows])
    return out


class _FeedForward4d(nn.Module):
    """An encoder FeedForward as 4-D convolutions (see ``_conv4d``), masks all ones."""

    def __init__(self, ffn: FeedForward):
        super().__init__()
        self.conv1, self.conv2 = _conv4d(ffn.conv1), _conv4d(ffn.conv2)

    def forward(self, x, mask):
        return self.conv2(torch.relu(self.conv1(x.unsqueeze(2)))).squeeze(2)


# Nine finite interpolation points and infinity: n = 10 products per tile, so F(6, 5) for
# the decoder's kernel and F(8, 3) for the encoder's. Small integers, halves and their
# inverses keep the transforms well conditioned in float32 (max abs error 3e-5 on the
# paper-size decoder, against 5e-5 to 7e-5 with +-3 or +-1/3 as the last pair).
WINOGRAD_POINTS = (0, 1, -1, 2, -2) + tuple(Fraction(p, 2) for p in (1, -1, 3, -3))
# Longer kernels keep the 4-D form: with 10 points, a 9-tap kernel leaves 2 outputs a
# tile, and the transforms would move 5 values for each.
MAX_WINOGRAD_KERNEL = 7


def winograd_matrices(
    kernel_size: int, points=WINOGRAD_POINTS
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Transforms of F(m, k), n = len(points) + 1 = m + k - 1, in float64.

    Correlation is the transpose of Toom-Cook polynomial multiplication: with V_j the
    (n, j) Vandermonde matrix of the points (infinity picks the leading coefficient),
    ``y = A^T [(G g) * (B^T d)]`` for A^T = V_m^T, G = V_k, B^T = V_n^-T, where d is a
    tile of n inputs and y its m outputs of the k-tap filter g.

    Returns:
        Tensor: A^T (m, n), output transform.
        Tensor: G (n, k), filter transform.
        Tensor: B^T (n, n), input transform.

    """
    n = len(points) + 1
    m = n - kernel_size + 1

    def vandermonde(cols):
        rows = [[Fraction(p) ** j for j in range(cols)] for p in points]
        rows.append([0] * (cols - 1) + [1])
        return torch.tensor(
            [[float(v) for v in row] for row in rows], dtype=torch.float64
        )

    return (
        vandermonde(m).T,
        vandermonde(kernel_size),
        torch.linalg.inv(vandermonde(n)).T,
    )


class _WinogradConv(nn.Module):
    """A "same" undilated convolution of one sequence (1, C, T) -> (1, O, T) by F(m, k)."""

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        output_transform, filter_transform, input_transform = winograd_matrices(
            conv.kernel_size[0]
        )
        weight = conv.weight.detach().double()
        self.channels = weight.size(1)
        self.tile, self.points = output_transform.shape
        self.pad = conv.padding[0]
        # (n, O, C): one matrix product per transformed point
        self.register_buffer(
            "weight",
            torch.einsum("nk,ock->noc", filter_transform, weight).float().contiguous(),
        )
        # B^T as a depthwise convolution with stride m: every tile of every channel at once
        self.register_buffer(
            "input_transform",
            input_transform.float().repeat(self.channels, 1)[:, None].contiguous(),
        )
        self.register_buffer("output_transform", output_transform.float())
        self.register_buffer("bias", conv.bias.detach()[:, None].clone())

    def forward(self, x):
        length = x.size(2)
        # Static pads (onnxruntime folds them into the Conv) and sizes left to -1, so the
        # graph computes no shapes: the strided Conv's ceil(length / m) tiles read at
        # most m - 1 of the extra zeros.
        x = nn.functional.pad(x, (self.pad, self.pad + self.tile - 1))
        v = nn.functional.conv1d(
            x, self.input_transform, stride=self.tile, groups=self.channels
        )  # (1, C * n, tiles)
        v = v.view(self.channels, self.points, -1).transpose(0, 1)
        products = torch.matmul(self.weight, v)  # (n, O, tiles)
        # (O * tiles, m) = products^T A: the outputs in time order, no permute of y
        y = torch.matmul(products.view(self.points, -1).t(), self.output_transform.t())
        return y.view(1, self.weight.size(1), -1)[:, :, :length] + self.bias


def _tileable(*convs: nn.Conv1d) -> bool:
    """Whether ``_WinogradConv`` computes these: odd kernels up to MAX_WINOGRAD_KERNEL,
    "same" padding, no dilation."""
    return all(
        c.dilation[0] == 1
        and c.kernel_size[0] % 2
        and c.kernel_size[0] <= MAX_WINOGRAD_KERNEL
        and c.padding[0] == c.kernel_size[0] // 2
        for c in convs
    )


class _Dense(nn.Module):
    """``weight @ x + bias`` on one sequence (1, C, T): a 1x1 convolution as a product."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight.detach().float().clone())
        self.register_buffer("bias", bias.detach().float()[:, None].clone())

    @classmethod
    def of(cls, conv: nn.Conv1d, rows: slice = slice(None)) -> "_Dense":
        """The 1x1 ``conv``'s output channels ``rows``."""
        return cls(conv.weight[rows, :, 0], conv.bias[rows])

    def forward(self, x):
        return torch.matmul(self.weight, x) + self.bias


class _FeedForwardWinograd(nn.Module):
    """An encoder FeedForward on (1, C, T) by Winograd's F(m, k), masks all ones."""

    def __init__(self, ffn: FeedForward):
        super().__init__()
        self.conv1, self.conv2 = _WinogradConv(ffn.conv1), _WinogradConv(ffn.conv2)

    def forward(self, x, mask):
        return self.conv2(torch.relu(self.conv1(x)))


class _UnmaskedAttention(nn.Module):
    """RelativeSelfAttention for one unpadded sequence: no masks (every pair is valid),
    which spares onnxruntime a (T, T) select per layer."""

    def __init__(self, attention: RelativeSelfAttention):
        super().__init__()
        self.attention = attention

    def forward(self, x, mask):
        return self.attention(x, None)


def _inverse_mix(invconv: InvertibleConv1x1, actnorm: ActNorm) -> nn.Conv1d:
    """One 1x1 conv = inverse 1x1 conv, then inverse ActNorm (the reverse order of a block)."""
    c = invconv.channels
    eye = torch.eye(c)[None]  # (1, C, T=C): column t is the t-th basis vector
    mix = invconv(eye, torch.ones(1, 1, c), reverse=True)[0][0]  # (C, C)
    inv_scale = torch.exp(-actnorm.log_scale.view(c, 1))
    conv = nn.Conv1d(c, c, 1)
    with torch.no_grad():
        conv.weight.copy_((inv_scale * mix)[:, :, None])
        conv.bias.copy_(-actnorm.bias.view(c) * inv_scale.view(c))
    return conv


class _Condition(nn.Module):
    """Speaker/language vector from the graph inputs, as the model computes it."""

    def __init__(self, model: GlowTTS):
        super().__init__()
        self.model = model

    def forward(self, sids=None, lids=None, spembs=None):
        if sids is None and lids is None and spembs is None:
            return None
        return self.model._global_condition(1, sids, spembs, lids)


class EncoderGraph(nn.Module):
    """Tokens (1, T_text') -> prior mean, log-std (1, odim, T_text'), durations (1, T_text')."""

    def __init__(self, model: GlowTTS, winograd: bool = True):
        super().__init__()
        model = _static_layer_norms(copy.deepcopy(model))
        _replace(
            model,
            FeedForward,
            lambda ffn: (
                _FeedForwardWinograd(ffn)
                if winograd and _tileable(ffn.conv1, ffn.conv2)
                else _FeedForward4d(ffn)
            ),
        )
        self.model = _replace(model, RelativeSelfAttention, _UnmaskedAttention)
        self.condition = _Condition(self.model)

    def forward(self, text, length_scale, sids=None, lids=None, spembs=None):
        g = self.condition(sids, lids, spembs)
        mask = torch.ones_like(text[:, None], dtype=torch.float32)
        x, mean, log_std = self.model.encoder(text, mask)
        logw = self.model.duration_predictor(x, mask, g)
        durations = self.model._durations_from_log(logw[:, 0], length_scale)
        return mean, log_std, durations.long()


class _Coupling4d(nn.Module):
    """An AffineCoupling's inverse on (1, C, 1, T) halves, without channel slicing.

    Each gated layer's tanh and sigmoid halves, residual and skip halves, and the end's
    shift and log-scale are separate convolutions, so no tensor is split along channels
    between convolutions (a split forces onnxruntime back out of its blocked layout).
    Batch 1 without padding: the masks are all ones and left out.
    """

    def __init__(self, coupling: AffineCoupling):
        super().__init__()
        wn = coupling.wavenet
        c = wn.channels
        lo, hi = slice(0, c), slice(c, 2 * c)
        self.sigmoid_scale = coupling.sigmoid_scale
        self.start = _conv4d(coupling.start)
        self.tanh = nn.ModuleList(_conv4d(conv, lo) for conv in wn.in_layers)
        self.sigmoid = nn.ModuleList(_conv4d(conv, hi) for conv in wn.in_layers)
        last = wn.num_layers - 1
        self.res = nn.ModuleList(
            _conv4d(conv, lo) for conv in wn.res_skip_layers[:last]
        )
        self.skip = nn.ModuleList(
            _conv4d(conv, hi) for conv in wn.res_skip_layers[:last]
        )
        self.skip.append(_conv4d(wn.res_skip_layers[last]))
        self.cond = wn.cond_layer
        half = coupling.end.out_channels // 2
        self.shift = _conv4d(coupling.end, slice(0, half))
        self.log_scale = _conv4d(coupling.end, slice(half, 2 * half))
        self.channels = c

    def forward(self, x_a, x_b, g=None):
        c = self.channels
        cond = None if g is None or self.cond is None else self.cond(g)[..., None]
        h = self.start(x_a)
        skip = None
        for i in range(len(self.tanh)):
            t, s = self.tanh[i](h), self.sigmoid[i](h)
            if cond is not None:
                t = t + cond[:, 2 * c * i : 2 * c * i + c]
                s = s + cond[:, 2 * c * i + c : 2 * c * (i + 1)]
            acts = torch.tanh(t) * torch.sigmoid(s)
            if i < len(self.res):
                h = h + self.res[i](acts)
            skip = self.skip[i](acts) if skip is None else skip + self.skip[i](acts)
        logs = bounded_log_scale(self.log_scale(skip), self.sigmoid_scale)
        return (x_b - self.shift(skip)) * torch.exp(-logs)


class _Mix4d(nn.Module):
    """A block's baked inverse mix (``_inverse_mix``) on the two halves, as four convs."""

    def __init__(self, mix: nn.Conv1d, half: int):
        super().__init__()
        a, b = slice(0, half), slice(half, mix.out_channels)
        self.aa, self.ba = _conv4d(mix, a, a), _conv4d(mix, b, a)
        self.ab, self.bb = _conv4d(mix, a, b), _conv4d(mix, b, b)
        self.bias_a = nn.Parameter(mix.bias[a].detach().view(1, -1, 1, 1).clone())
        self.bias_b = nn.Parameter(mix.bias[b].detach().view(1, -1, 1, 1).clone())

    def forward(self, x_a, x_b):
        return (
            self.aa(x_a) + self.ab(x_b) + self.bias_a,
            self.ba(x_a) + self.bb(x_b) + self.bias_b,
        )


class _CouplingWinograd(nn.Module):
    """An AffineCoupling's inverse on (1, C, T) halves: Winograd k-tap layers, 1x1 products.

    The WaveNet's skip sum and the coupling's end are linear in the layers' gated
    activations, so they are folded (in float64) into one product over the activations
    of all layers: (2 half, L C) instead of L skip products of (C, C) and the end's
    (2 half, C), and no skip sums. Batch 1 without padding: the masks are all ones and
    left out.
    """

    def __init__(self, coupling: AffineCoupling):
        super().__init__()
        wn = coupling.wavenet
        c = wn.channels
        self.channels = c
        self.sigmoid_scale = coupling.sigmoid_scale
        self.start = _Dense.of(coupling.start)
        self.in_layers = nn.ModuleList(_WinogradConv(conv) for conv in wn.in_layers)
        last = wn.num_layers - 1
        self.res = nn.ModuleList(
            _Dense.of(conv, slice(0, c)) for conv in wn.res_skip_layers[:last]
        )
        skips = [conv.weight[c:, :, 0] for conv in wn.res_skip_layers[:last]]
        skips.append(wn.res_skip_layers[last].weight[:, :, 0])
        skip_bias = sum(conv.bias[c:] for conv in wn.res_skip_layers[:last])
        skip_bias = skip_bias + wn.res_skip_layers[last].bias
        end = coupling.end.weight[:, :, 0].double()
        weight = end @ torch.cat(skips, dim=1).double()
        bias = end @ skip_bias.double() + coupling.end.bias.double()
        half = coupling.end.out_channels // 2
        self.shift = _Dense(weight[:half], bias[:half])
        self.log_scale = _Dense(weight[half:], bias[half:])
        self.cond = wn.cond_layer

    def forward(self, x_a, x_b, g=None):
        c = self.channels
        cond = None if g is None or self.cond is None else self.cond(g)
        h = self.start(x_a)
        acts = []
        for i, in_layer in enumerate(self.in_layers):
            gates = in_layer(h)
            if cond is not None:
                gates = gates + cond[:, 2 * c * i : 2 * c * (i + 1)]
            acts.append(torch.tanh(gates[:, :c]) * torch.sigmoid(gates[:, c:]))
            if i < len(self.res):
                h = h + self.res[i](acts[-1])
        acts = torch.cat(acts, dim=1)
        logs = bounded_log_scale(self.log_scale(acts), self.sigmoid_scale)
        return (x_b - self.shift(acts)) * torch.exp(-logs)


class _Mix3d(nn.Module):
    """A block's baked inverse mix (``_inverse_mix``) on (1, C, T) halves."""

    def __init__(self, mix: nn.Conv1d, half: int):
        super().__init__()
        self.mix, self.half = _Dense.of(mix), half

    def forward(self, x_a, x_b):
        y = self.mix(torch.cat([x_a, x_b], dim=1))
        return y[:, : self.half], y[:, self.half :]


class DecoderGraph(nn.Module):
    """Prior along the path (1, odim, T_feats) and noise -> features (1, T_feats, odim)."""

    def __init__(self, model: GlowTTS, winograd: bool = True):
        super().__init__()
        model = _replace(copy.deepcopy(model), WeightNormConv1d, _folded)
        flows = model.decoder.flows
        self.squeeze_factor = model.decoder.squeeze_factor
        couplings = [f for f in flows if isinstance(f, AffineCoupling)]
        self.half = flows[0].log_scale.numel() // 2
        # dilated WaveNets keep the 4-D form: F(m, k) here tiles contiguous taps
        self.winograd = winograd and all(
            _tileable(*c.wavenet.in_layers) for c in couplings
        )
        coupling, mix = (
            (_CouplingWinograd, _Mix3d) if self.winograd else (_Coupling4d, _Mix4d)
        )
        self.couplings = nn.ModuleList(coupling(c) for c in couplings)
        self.mixes = nn.ModuleList(
            mix(_inverse_mix(flows[i + 1], flows[i]), self.half)
            for i in range(0, len(flows), 3)
        )
        self.condition = _Condition(model)

    def forward(
        self, mean_y, log_std_y, noise, noise_scale, sids=None, lids=None, spembs=None
    ):
        g = self.condition(sids, lids, spembs)
        z = mean_y + torch.exp(log_std_y) * noise * noise_scale
        x, _ = squeeze(z, torch.ones_like(z[:, :1]), self.squeeze_factor)
        if not self.winograd:
            x = x.unsqueeze(2)  # (1, C, 1, T'): see _conv4d
        x_a, x_b = x[:, : self.half], x[:, self.half :]
        for coupling, mix in zip(reversed(self.couplings), reversed(self.mixes)):
            x_a, x_b = mix(x_a, coupling(x_a, x_b, g))
        x = torch.cat([x_a, x_b], dim=1)
        if not self.winograd:
            x = x.squeeze(2)
        y, _ = unsqueeze(x, torch.ones_like(x[:, :1]), self.squeeze_factor)
        return y.transpose(1, 2)


def condition_inputs(model: GlowTTS) -> Dict[str, torch.Tensor]:
    """Example values of the conditioning inputs this model takes (name -> tensor)."""
    inputs = {}
    if model.spks:
        inputs["sids"] = torch.zeros(1, dtype=torch.long)
    if model.langs:
        inputs["lids"] = torch.zeros(1, dtype=torch.long)
    if model.spk_embed_dim:
        inputs["spembs"] = torch.ones(1, model.spk_embed_dim)
    return inputs


def _export(
    module: nn.Module,
    args: Dict[str, torch.Tensor],
    outputs: List[str],
    dynamic: Dict[str, Dict[int, str]],
    path: Path,
) -> None:
    tmp = path.with_name(f".tmp.{path.name}")
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # tracer warnings on the (constant) input checks
        torch.onnx.export(
            module,
            (),
            str(tmp),
            kwargs=args,
            input_names=list(args),
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    tmp.replace(path)


@torch.no_grad()
def export_graphs(
    model: GlowTTS, out_dir: Path, winograd: bool = True
) -> Dict[str, List[str]]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` into ``out_dir`` (each atomically).

    Args:
        model (GlowTTS): The model (put in eval mode here).
        out_dir (Path): Existing directory.
        winograd (bool): The feed-forward networks and undilated couplings by
            Winograd's F(m, k) (else as 4-D convolutions).

    Returns:
        Dict[str, List[str]]: Input names of each graph.

    """
    model = model.eval().float()
    cond = condition_inputs(model)
    text = torch.full((1, 7), model.blank_id, dtype=torch.long)
    text[0, 1::2] = min(1, model.idim - 1)
    enc_args = dict(text=text, length_scale=torch.tensor(1.0), **cond)
    _export(
        EncoderGraph(model, winograd).eval(),
        enc_args,
        ["mean", "log_std", "durations"],
        dict(
            text={1: "T_text"},
            mean={2: "T_text"},
            log_std={2: "T_text"},
            durations={1: "T_text"},
        ),
        out_dir / "encoder.onnx",
    )
    frames = 4 * model.squeeze_factor
    prior = torch.zeros(1, model.odim, frames)
    dec_args = dict(
        mean_y=prior,
        log_std_y=prior,
        noise=prior,
        noise_scale=torch.tensor(0.0),
        **cond,
    )
    _export(
        DecoderGraph(model, winograd).eval(),
        dec_args,
        ["feats"],
        dict(
            mean_y={2: "T_feats"},
            log_std_y={2: "T_feats"},
            noise={2: "T_feats"},
            feats={1: "T_feats"},
        ),
        out_dir / "decoder.onnx",
    )
    return dict(encoder=list(enc_args), decoder=list(dec_args))
