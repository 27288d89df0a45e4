"""Our building blocks against ESPnet's: same outputs for the same weights, and speed.

* masks: ``tensor_utils.sequence_mask`` vs ``make_pad_mask`` / ``make_non_pad_mask``
  (``espnet2.legacy.nets.pytorch_backend.nets_utils``).
* LayerNorm over channels: release 0.1.0's own class vs ESPnet's ``LayerNorm(dim=1)``
  (``espnet2.legacy.nets.pytorch_backend.transformer.layer_norm``) and the
  ``encoder.ChannelLayerNorm`` that now subclasses it.
* The coupling's WaveNet: ``flows.WaveNet`` vs ``espnet2.gan_tts.wavenet.WaveNet`` as VITS's
  coupling builds it (``residual_coupling.py``; here without its skip scaling, which
  Glow-TTS does not have), with our weights copied in.

Times are medians on the current torch threads (use ``OMP_NUM_THREADS=1`` for one thread);
the WaveNet timings alternate ours and ESPnet's call by call.

Usage:
    OMP_NUM_THREADS=1 python bench/reuse.py [--repeat 5] [--batch 4] [--frames 400]
"""

import argparse
import copy
import time
import warnings

import torch
from torch.nn import functional as F

from espnet_glowtts.encoder import ChannelLayerNorm
from espnet_glowtts.flows import FlowDecoder, WaveNet
from espnet_glowtts.tensor_utils import sequence_mask


def median_ms(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3


def fwd_bwd(module, *args):
    def step():
        out = module(*args)
        out = out[0] if isinstance(out, tuple) else out
        out.float().square().mean().backward()

    return step


def masks(repeat):
    from espnet2.legacy.nets.pytorch_backend.nets_utils import make_pad_mask

    print(
        "\n## masks: sequence_mask(lengths, T) vs (~make_pad_mask(lengths, maxlen=T))[:, None]"
    )
    for batch, length in ((32, 180), (32, 870), (1, 10000)):
        g = torch.Generator().manual_seed(0)
        lengths = torch.randint(1, length + 1, (batch,), generator=g)
        lengths[0] = length
        ours = sequence_mask(lengths, length)
        theirs = (~make_pad_mask(lengths, maxlen=length)).unsqueeze(1).float()
        n = 200
        t_ours = median_ms(
            lambda: [sequence_mask(lengths, length) for _ in range(n)], repeat
        )
        t_esp = median_ms(
            lambda: [
                (~make_pad_mask(lengths, maxlen=length)).unsqueeze(1).float()
                for _ in range(n)
            ],
            repeat,
        )
        print(
            f"B={batch:3d} T={length:6d}: equal={torch.equal(ours, theirs)}; "
            f"ours {t_ours / n * 1e3:8.1f} us, ESPnet {t_esp / n * 1e3:8.1f} us per call"
        )


class PreviousChannelLayerNorm(torch.nn.Module):
    """The channel LayerNorm of release 0.1.0, before ESPnet's class was reused."""

    def __init__(self, channels: int, eps: float = 1e-4):
        super().__init__()
        self.eps = eps
        self.gamma = torch.nn.Parameter(torch.ones(channels))
        self.beta = torch.nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        x = F.layer_norm(
            x.transpose(1, -1), x.shape[1:2], self.gamma, self.beta, self.eps
        )
        return x.transpose(1, -1)


def layer_norms(repeat, batch):
    from espnet2.legacy.nets.pytorch_backend.transformer.layer_norm import LayerNorm

    print(
        "\n## LayerNorm over channels (192): release 0.1.0's own vs ESPnet's LayerNorm(dim=1)"
    )
    previous = PreviousChannelLayerNorm(192)
    with torch.no_grad():
        previous.gamma.normal_(1.0, 0.1)
        previous.beta.normal_(0.0, 0.1)
    espnet = LayerNorm(192, dim=1)
    current = ChannelLayerNorm(192)  # ESPnet's class, eps 1e-4, release 0.1.0's names
    espnet.load_state_dict({"weight": previous.gamma, "bias": previous.beta})
    current.load_state_dict(previous.state_dict(), strict=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 192, 180, generator=g)
    quiet = x.clone()
    quiet[:, :, :20] = 0.01 * torch.randn(
        batch, 192, 20, generator=g
    )  # low-variance frames
    for name, inp in (("N(0,1) input", x), ("frames with std 0.01", quiet)):
        d_esp = (previous(inp) - espnet(inp)).abs().max().item()
        d_cur = (previous(inp) - current(inp)).abs().max().item()
        print(
            f"{name}: max |previous - ESPnet (eps {espnet.eps:g})| = {d_esp:.3g}; "
            f"max |previous - ChannelLayerNorm| = {d_cur:.3g}"
        )
    print(
        "state-dict names: previous",
        list(previous.state_dict()),
        "ESPnet",
        list(espnet.state_dict()),
        "ChannelLayerNorm",
        list(current.state_dict()),
    )
    xr = x.clone().requires_grad_()
    for _ in range(2):  # alternate, the machine may be shared
        t_prev = median_ms(fwd_bwd(previous, xr), repeat * 10)
        t_cur = median_ms(fwd_bwd(current, xr), repeat * 10)
        print(
            f"forward+backward (B={batch}, 192 x 180): previous {t_prev:.3f} ms, "
            f"ChannelLayerNorm {t_cur:.3f} ms"
        )


class EspnetWaveNet(torch.nn.Module):
    """ESPnet's WaveNet configured like our coupling's, loaded from one of ours."""

    def __init__(self, ours: WaveNet, kernel_size: int, global_channels: int = 0):
        super().__init__()
        from espnet2.gan_tts.wavenet import WaveNet as ESPnetWaveNet

        c, layers = ours.channels, ours.num_layers
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.nn.utils.weight_norm is deprecated
            self.net = ESPnetWaveNet(
                in_channels=-1,
                out_channels=-1,
                kernel_size=kernel_size,
                layers=layers,
                stacks=1,
                base_dilation=1,
                residual_channels=c,
                aux_channels=-1,
                gate_channels=2 * c,
                skip_channels=c,
                global_channels=global_channels if global_channels > 0 else -1,
                dropout_rate=ours.dropout.p,
                use_weight_norm=True,
                use_first_conv=False,
                use_last_conv=False,
                scale_residual=False,
                scale_skip_connect=False,
            )
        with torch.no_grad():
            for i, block in enumerate(self.net.conv_layers):
                src = ours.in_layers[i]
                block.conv.weight_v.copy_(src.weight_v)
                block.conv.weight_g.copy_(src.weight_g)
                bias = src.bias.clone()
                if ours.cond_layer is not None:
                    rows = slice(2 * c * i, 2 * c * (i + 1))
                    block.conv1x1_glo.weight_v.copy_(ours.cond_layer.weight_v[rows])
                    block.conv1x1_glo.weight_g.copy_(ours.cond_layer.weight_g[rows])
                    bias += ours.cond_layer.bias[
                        rows
                    ]  # ESPnet's global conv has no bias
                block.conv.bias.copy_(bias)
                out = ours.res_skip_layers[i]
                if i < layers - 1:
                    block.conv1x1_out.weight_v.copy_(out.weight_v)
                    block.conv1x1_out.weight_g.copy_(out.weight_g)
                    block.conv1x1_out.bias.copy_(out.bias)
                else:  # our last layer has only the skip half; ESPnet's residual is unused
                    block.conv1x1_out.weight_v[c:].copy_(out.weight_v)
                    block.conv1x1_out.weight_g[c:].copy_(out.weight_g)
                    block.conv1x1_out.bias[c:].copy_(out.bias)

    def forward(self, x, mask, g=None):
        return self.net(x, x_mask=mask, g=g)


def wavenets(repeat, batch, frames):
    print("\n## coupling WaveNet (192 channels, kernel 5, 4 layers, dilation 1)")
    torch.manual_seed(0)
    ours = WaveNet(192, 5, 1, 4, global_channels=256, dropout=0.05)
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.01 * torch.randn_like(p))
    theirs = EspnetWaveNet(ours, 5, 256)
    ours.eval(), theirs.eval()
    lengths = torch.tensor([frames] + [frames * 3 // 4] * (batch - 1))
    mask = sequence_mask(lengths, frames)
    x = torch.randn(batch, 192, frames) * mask
    g = torch.randn(batch, 256, 1)
    with torch.no_grad():
        d = (ours(x, mask, g) - theirs(x, mask, g)).abs().max().item()
        scale = ours(x, mask, g).abs().max().item()
    print(
        f"eval mode, same weights: max |ours - ESPnet| = {d:.3g} (outputs up to {scale:.3g})"
    )
    n_ours = sum(p.numel() for p in ours.parameters())
    n_esp = sum(p.numel() for p in theirs.parameters())
    print(
        f"parameters: ours {n_ours:,}, ESPnet {n_esp:,}; names: ours "
        f"{sorted({k.split('.')[0] for k in ours.state_dict()})}, ESPnet "
        f"{sorted({'.'.join(k.split('.')[:3:2]) for k in theirs.net.state_dict()})}"
    )
    ours.train(), theirs.train()
    xr = x.clone().requires_grad_()
    t = interleaved(
        {"ours": fwd_bwd(ours, xr, mask, g), "ESPnet": fwd_bwd(theirs, xr, mask, g)},
        repeat,
    )
    print(
        f"forward+backward, train mode (B={batch}, T={frames}): ours {t['ours']:.1f} ms, "
        f"ESPnet {t['ESPnet']:.1f} ms"
    )
    ours.eval(), theirs.eval()
    with torch.no_grad():
        t = interleaved(
            {"ours": lambda: ours(x, mask, g), "ESPnet": lambda: theirs(x, mask, g)},
            repeat,
        )
    print(
        f"inference forward (no grad): ours {t['ours']:.1f} ms, ESPnet {t['ESPnet']:.1f} ms"
    )

    print(
        "\n## paper-size FlowDecoder (80 mels, 12 blocks), forward+backward, train mode"
    )
    decoder = FlowDecoder(80)
    swapped = copy.deepcopy(decoder)
    for flow in swapped.flows[2::3]:
        flow.wavenet = EspnetWaveNet(flow.wavenet, 5)
    y = torch.randn(batch, 80, 2 * frames)
    y_mask = sequence_mask(lengths * 2, 2 * frames)
    t = interleaved(
        {"ours": fwd_bwd(decoder, y, y_mask), "ESPnet": fwd_bwd(swapped, y, y_mask)},
        repeat,
    )
    print(
        f"B={batch}, T_feats={2 * frames}: ours {t['ours']:.0f} ms, with ESPnet's WaveNet "
        f"{t['ESPnet']:.0f} ms"
    )


def interleaved(fns, repeat):
    """Median ms of each function, calls alternated (a shared machine's load hits all alike)."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: sorted(t)[len(t) // 2] * 1e3 for name, t in times.items()}


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--frames", type=int, default=400, help="frames after the squeeze")
    p.add_argument("--only", choices=["masks", "layernorm", "wavenet"], default=None)
    args = p.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    if args.only in (None, "masks"):
        masks(args.repeat)
    if args.only in (None, "layernorm"):
        layer_norms(args.repeat, args.batch)
    if args.only in (None, "wavenet"):
        wavenets(args.repeat, args.batch, args.frames)


if __name__ == "__main__":
    main()
