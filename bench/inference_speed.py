#!/usr/bin/env python
"""Inference speed of Glow-TTS against ESPnet's Tacotron2, FastSpeech2 and VITS.

Issue 5, claim 1 (parallel synthesis, "15.7x faster than Tacotron 2"). Every model is built
at its LJSpeech recipe size (Glow-TTS: the paper's base config, 28.6M parameters) with
random weights, and made to do the same work: for each input length (short ~40, average
~180, long ~500 tokens) all models produce the same number of output frames.

* Glow-TTS, VITS: durations are forced (``durations=`` / ``durations=``), so neither runs
  its duration predictor.
* FastSpeech2: its duration predictor's ``inference`` is replaced by the forced durations
  (<sos/eos> gets 0 frames); everything else is ESPnet's inference path.
* Tacotron2: ``threshold`` above 1 (the stop token never fires) and ``maxlenratio`` set so
  that the autoregressive decoder runs exactly to the frame count.

Reported per (device, threads, model, length): median wall time of feature generation,
of feature generation plus Griffin-Lim, the real-time factor (time / audio duration),
parameters, and the peak memory of synthesis (CPU: peak of live tensor storage, traced in
one extra untimed run, weights excluded; CUDA: torch.cuda.max_memory_allocated above the
loaded model). VITS is text to waveform: its time is end to end (its HiFi-GAN decoder
included), with no feature column.
``glow_tts_plain`` is the same Glow-TTS with the inference caches (inverse 1x1 matrices,
folded weight norm) switched off, which shows what the optimised path buys.

Each (device, threads) runs in its own process; inside it the models take turns at every
length (interleaved rounds, rotating order), so background load on a shared machine hits
them alike. Ratios are always computed from timings of the same run.

    python bench/inference_speed.py                        # CPU 1 and 2 threads (+ CUDA)
    python bench/inference_speed.py --threads 2 --lengths 180 --repeats 3   # quick look
    python bench/inference_speed.py --out_json bench/results/inference_speed.json \\
        --out_md bench/results/inference_speed.md
"""

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

FS, N_FFT, N_SHIFT, N_MELS = 22050, 1024, 256, 80
IDIM = 80  # about the size of an LJSpeech phoneme token list (<blank>, <unk>, ..., <sos/eos>)
# LJSpeech: 6.57 s and ~100 characters per utterance on average, 86.1 frames/s at hop 256
# -> about 5.6 frames per character.
FRAMES_PER_TOKEN = 5.6
MODELS = ("glow_tts", "glow_tts_plain", "tacotron2", "fastspeech2", "vits")
LABELS = dict(
    glow_tts="Glow-TTS",
    glow_tts_plain="Glow-TTS (plain path)",
    tacotron2="Tacotron2",
    fastspeech2="FastSpeech2",
    vits="VITS (text->wav)",
)

# ESPnet's egs2/ljspeech/tts1/conf/tuning/train_{tacotron2,fastspeech2,vits}.yaml.
TACOTRON2_CONF = dict(
    embed_dim=512,
    elayers=1,
    eunits=512,
    econv_layers=3,
    econv_chans=512,
    econv_filts=5,
    atype="location",
    adim=512,
    aconv_chans=32,
    aconv_filts=15,
    cumulate_att_w=True,
    dlayers=2,
    dunits=1024,
    prenet_layers=2,
    prenet_units=256,
    postnet_layers=5,
    postnet_chans=512,
    postnet_filts=5,
    output_activation=None,
    use_batch_norm=True,
    use_concate=True,
    use_residual=False,
    dropout_rate=0.5,
    zoneout_rate=0.1,
    reduction_factor=1,
    use_masking=True,
    bce_pos_weight=5.0,
    use_guided_attn_loss=True,
    guided_attn_loss_sigma=0.4,
    guided_attn_loss_lambda=1.0,
)
FASTSPEECH2_CONF = dict(
    adim=384,
    aheads=2,
    elayers=4,
    eunits=1536,
    dlayers=4,
    dunits=1536,
    positionwise_layer_type="conv1d",
    positionwise_conv_kernel_size=3,
    duration_predictor_layers=2,
    duration_predictor_chans=256,
    duration_predictor_kernel_size=3,
    postnet_layers=5,
    postnet_filts=5,
    postnet_chans=256,
    use_masking=True,
    use_scaled_pos_enc=True,
    encoder_normalize_before=True,
    decoder_normalize_before=True,
    reduction_factor=1,
    init_type="xavier_uniform",
    init_enc_alpha=1.0,
    init_dec_alpha=1.0,
    transformer_enc_dropout_rate=0.2,
    transformer_enc_positional_dropout_rate=0.2,
    transformer_enc_attn_dropout_rate=0.2,
    transformer_dec_dropout_rate=0.2,
    transformer_dec_positional_dropout_rate=0.2,
    transformer_dec_attn_dropout_rate=0.2,
    pitch_predictor_layers=5,
    pitch_predictor_chans=256,
    pitch_predictor_kernel_size=5,
    pitch_predictor_dropout=0.5,
    pitch_embed_kernel_size=1,
    pitch_embed_dropout=0.0,
    stop_gradient_from_pitch_predictor=True,
    energy_predictor_layers=2,
    energy_predictor_chans=256,
    energy_predictor_kernel_size=3,
    energy_predictor_dropout=0.5,
    energy_embed_kernel_size=1,
    energy_embed_dropout=0.0,
    stop_gradient_from_energy_predictor=False,
)
VITS_GENERATOR = dict(
    hidden_channels=192,
    spks=-1,
    global_channels=-1,
    segment_size=32,
    text_encoder_attention_heads=2,
    text_encoder_ffn_expand=4,
    text_encoder_blocks=6,
    text_encoder_positionwise_layer_type="conv1d",
    text_encoder_positionwise_conv_kernel_size=1,
    text_encoder_positional_encoding_layer_type="rel_pos",
    text_encoder_self_attention_layer_type="rel_selfattn",
    text_encoder_activation_type="swish",
    text_encoder_normalize_before=True,
    text_encoder_dropout_rate=0.1,
    text_encoder_positional_dropout_rate=0.0,
    text_encoder_attention_dropout_rate=0.0,
    text_encoder_conformer_kernel_size=7,
    use_macaron_style_in_text_encoder=True,
    use_conformer_conv_in_text_encoder=True,
    decoder_kernel_size=7,
    decoder_channels=512,
    decoder_upsample_scales=[8, 8, 2, 2],
    decoder_upsample_kernel_sizes=[16, 16, 4, 4],
    decoder_resblock_kernel_sizes=[3, 7, 11],
    decoder_resblock_dilations=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    use_weight_norm_in_decoder=True,
    posterior_encoder_kernel_size=5,
    posterior_encoder_layers=16,
    posterior_encoder_stacks=1,
    posterior_encoder_base_dilation=1,
    posterior_encoder_dropout_rate=0.0,
    use_weight_norm_in_posterior_encoder=True,
    flow_flows=4,
    flow_kernel_size=5,
    flow_base_dilation=1,
    flow_layers=4,
    flow_dropout_rate=0.0,
    use_weight_norm_in_flow=True,
    use_only_mean_in_flow=True,
    stochastic_duration_predictor_kernel_size=3,
    stochastic_duration_predictor_dropout_rate=0.5,
    stochastic_duration_predictor_flows=4,
    stochastic_duration_predictor_dds_conv_layers=3,
)


# ---------------------------------------------------------------------------------------
# Shared by the worker and the tests
def frames_for(num_tokens: int, frames_per_token: float = FRAMES_PER_TOKEN) -> int:
    """Output frames for an input length: even (Glow-TTS squeezes by 2), >= 2 per token."""
    frames = max(2 * num_tokens, int(round(num_tokens * frames_per_token)))
    return frames + frames % 2


def even_durations(num_tokens: int, num_frames: int):
    """Integer durations (>= 1) over ``num_tokens`` tokens summing to ``num_frames``."""
    import torch

    edges = torch.div(
        torch.arange(num_tokens + 1) * num_frames, num_tokens, rounding_mode="floor"
    )
    return edges[1:] - edges[:-1]


@contextlib.contextmanager
def glow_tts_plain_path():
    """Run Glow-TTS without its inference caches (the 'plain' path).

    The flows call ``cached_tensor`` for the inverse 1x1 matrices and the folded weight
    norm; with this context they recompute both on every call, as in training.
    """
    from espnet_glowtts import flows

    original = flows.cached_tensor
    flows.cached_tensor = lambda module, name, sources, compute: compute()
    try:
        yield
    finally:
        flows.cached_tensor = original


# ---------------------------------------------------------------------------------------
# Worker: one model, one device, one thread count
class PeakTensorMemory:
    """Peak bytes of live tensor storage while the context is active (any device).

    A ``TorchDispatchMode`` sees every tensor an aten op returns; a storage counts from its
    first appearance until the last tensor using it is freed. On the CPU this is the
    memory the computation needs, independent of the allocator's caching (peak RSS is
    not: freed memory stays resident). Python overhead per op; use in an untimed run.
    """

    def __init__(self):
        import weakref

        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_leaves

        tracker = self
        self.current = self.peak = 0
        self._live = {}

        def release(key):
            entry = tracker._live.get(key)
            if entry is not None:
                entry[1] -= 1
                if entry[1] == 0:
                    tracker.current -= entry[0]
                    del tracker._live[key]

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                import torch

                out = func(*args, **(kwargs or {}))
                for t in tree_leaves(out):
                    if not isinstance(t, torch.Tensor):
                        continue
                    storage = t.untyped_storage()
                    key = (storage.data_ptr(), t.device.type, t.device.index)
                    if key[0] == 0:
                        continue
                    entry = tracker._live.get(key)
                    if entry is None:
                        entry = tracker._live[key] = [storage.nbytes(), 0]
                        tracker.current += entry[0]
                        tracker.peak = max(tracker.peak, tracker.current)
                    entry[1] += 1
                    weakref.finalize(t, release, key)
                return out

        self._mode = Mode()

    def __enter__(self):
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self._mode.__exit__(*exc)


def build(name: str, device: str):
    """(model, params, synthesise(text, durations) -> (feats or None, wav or None))."""
    import torch

    torch.manual_seed(0)
    if name in ("glow_tts", "glow_tts_plain"):
        from espnet_glowtts import GlowTTS

        model = GlowTTS(idim=IDIM, odim=N_MELS)
        counted = model

        def run(text, durations):
            return (
                model.inference(text, durations=durations, noise_scale=0.667)[
                    "feat_gen"
                ],
                None,
            )

    elif name == "tacotron2":
        from espnet2.tts.tacotron2 import Tacotron2

        model = counted = Tacotron2(idim=IDIM, odim=N_MELS, **TACOTRON2_CONF)

        def run(text, durations):
            frames = int(durations.sum())
            ratio = (frames + 0.5) / (text.numel() + 1)  # h has T_text + 1 (<sos/eos>)
            return (
                model.inference(
                    text, threshold=2.0, minlenratio=0.0, maxlenratio=ratio
                )["feat_gen"],
                None,
            )

    elif name == "fastspeech2":
        from espnet2.tts.fastspeech2 import FastSpeech2

        model = counted = FastSpeech2(idim=IDIM, odim=N_MELS, **FASTSPEECH2_CONF)
        forced = {}
        # Forced durations (T_text + 1 with <sos/eos> = 0) in place of the predicted ones.
        model.duration_predictor.inference = lambda hs, masks: forced["d"].clone()

        def run(text, durations):
            forced["d"] = torch.cat([durations, durations.new_zeros(1)])[None]
            return model.inference(text)["feat_gen"], None

    elif name == "vits":
        from espnet2.gan_tts.vits import VITS

        model = VITS(
            idim=IDIM,
            odim=N_FFT // 2 + 1,
            sampling_rate=FS,
            generator_params=dict(VITS_GENERATOR),
        )
        counted = model.generator  # the discriminator is not used at inference

        def run(text, durations):
            return None, model.inference(text, durations=durations.float())["wav"]

    else:
        raise ValueError(f"unknown model {name}")
    model.to(device).eval()
    params = sum(p.numel() for p in counted.parameters())
    return model, params, run


def worker(args) -> list:
    """Time every model on one device and thread count, interleaved.

    All models live in this process; at each length they take turns (the order rotates
    every round), so a change in the machine's background load hits them alike and the
    ratios stay fair.
    """
    import logging

    import numpy as np
    import torch

    logging.disable(logging.WARNING)  # ESPnet's make_pad_mask warns on every call
    torch.set_num_threads(args.threads)
    device = args.device
    cuda = device.startswith("cuda")
    built, runners = {}, {}
    for name in args.models:
        key = "glow_tts" if name == "glow_tts_plain" else name
        if key not in built:
            built[key] = build(key, device)
        runners[name] = built[key]
    gl = None
    if args.griffin_lim_iters > 0:
        from espnet2.utils.griffin_lim import Spectrogram2Waveform

        gl = Spectrogram2Waveform(
            n_fft=N_FFT,
            n_shift=N_SHIFT,
            fs=FS,
            n_mels=N_MELS,
            fmin=0,
            fmax=8000,
            griffin_lim_iters=args.griffin_lim_iters,
        )
    load_start = os.getloadavg()[0]
    out = {
        name: dict(
            model=name,
            device=device,
            threads=args.threads,
            params=runners[name][1],
            rows=[],
        )
        for name in args.models
    }
    g = torch.Generator().manual_seed(1)

    def once(name, text, durations):
        run = runners[name][2]
        ctx = (
            glow_tts_plain_path()
            if name == "glow_tts_plain"
            else contextlib.nullcontext()
        )
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            mem0 = torch.cuda.memory_allocated()
        with ctx:
            t0 = time.perf_counter()
            feats, wav = run(text, durations)
            if cuda:
                torch.cuda.synchronize()
            t1 = time.perf_counter()
        if feats is not None and gl is not None:
            wav = gl(feats.float().cpu())
        t2 = time.perf_counter()
        peak = (torch.cuda.max_memory_allocated() - mem0) / 2**20 if cuda else None
        return feats, wav, t1 - t0, t2 - t0, peak

    def tracked_peak(name, text, durations):
        ctx = (
            glow_tts_plain_path()
            if name == "glow_tts_plain"
            else contextlib.nullcontext()
        )
        with ctx, PeakTensorMemory() as tracker:
            runners[name][2](text, durations)
        return tracker.peak / 2**20

    with torch.inference_mode():
        for num_tokens in args.lengths:
            frames = frames_for(num_tokens, args.frames_per_token)
            text = torch.randint(2, IDIM - 1, (num_tokens,), generator=g).to(device)
            durations = even_durations(num_tokens, frames).to(device)
            audio_s = frames * N_SHIFT / FS
            outputs = {}
            for name in args.models:
                for _ in range(args.warmup):
                    feats, wav, *_ = once(name, text, durations)
                got = feats.size(0) if feats is not None else wav.numel() // N_SHIFT
                if got != frames:
                    raise RuntimeError(
                        f"{name}: {got} frames for {num_tokens} tokens, "
                        f"expected {frames}: the work is not matched"
                    )
                outputs[name] = feats if feats is not None else wav
            times = {name: ([], [], []) for name in args.models}
            start, rnd = time.perf_counter(), 0
            while rnd < args.repeats and (
                rnd < args.min_repeats or time.perf_counter() - start < args.max_seconds
            ):
                k = rnd % len(args.models)
                for name in args.models[k:] + args.models[:k]:
                    _, _, t_feat, t_total, peak = once(name, text, durations)
                    for lst, v in zip(times[name], (t_feat, t_total, peak)):
                        lst.append(v)
                rnd += 1
            for name in args.models:
                feat_times, total_times, peaks = times[name]
                if cuda:
                    peak, kind = max(peaks), "cuda max_memory_allocated"
                elif args.memory:
                    peak, kind = (
                        tracked_peak(name, text, durations),
                        "live tensor storage",
                    )
                else:
                    peak, kind = None, None
                feat_med = statistics.median(feat_times)
                tot_med = statistics.median(total_times)
                is_wav_model = name == "vits"
                out[name]["rows"].append(
                    dict(
                        tokens=num_tokens,
                        frames=frames,
                        audio_s=round(audio_s, 3),
                        feat_s=None if is_wav_model else feat_med,
                        feat_rtf=None if is_wav_model else feat_med / audio_s,
                        total_s=feat_med if is_wav_model else (tot_med if gl else None),
                        total_rtf=(
                            (feat_med if is_wav_model else tot_med) / audio_s
                            if (gl or is_wav_model)
                            else None
                        ),
                        feat_times=[round(t, 5) for t in feat_times],
                        peak_mem_mb=None if peak is None else round(peak, 1),
                        peak_mem_kind=kind,
                        finite=bool(np.isfinite(outputs[name].float().cpu()).all()),
                    )
                )
                print(
                    f"  {device}/{args.threads}t {name:15s} {num_tokens:4d} tokens "
                    f"{frames:5d} frames: {feat_med * 1e3:9.1f} ms (n={len(feat_times)}, "
                    f"load {os.getloadavg()[0]:.2f})",
                    file=sys.stderr,
                    flush=True,
                )
    for r in out.values():
        r.update(
            load=[round(load_start, 2), round(os.getloadavg()[0], 2)],
            date=time.strftime("%Y-%m-%d %H:%M"),
        )
    return list(out.values())


# ---------------------------------------------------------------------------------------
# Driver
def machine_info() -> dict:
    import torch

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = dict(
        cpu=cpu,
        cores=os.cpu_count(),
        python=platform.python_version(),
        torch=torch.__version__,
        load_before=os.getloadavg(),
        date=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    try:
        import espnet

        info["espnet"] = espnet.__version__
    except Exception:  # noqa: BLE001
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run_worker(device: str, threads: int, args, memory: bool) -> list:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        "--models",
        *args.models,
        "--device",
        device,
        "--threads",
        str(threads),
        "--repeats",
        str(args.repeats),
        "--min_repeats",
        str(args.min_repeats),
        "--max_seconds",
        str(args.max_seconds),
        "--warmup",
        str(args.warmup),
        "--griffin_lim_iters",
        str(args.griffin_lim_iters),
        "--frames_per_token",
        str(args.frames_per_token),
        "--lengths",
        *map(str, args.lengths),
        "--memory",
        str(memory).lower(),
    ]
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        PYTHONWARNINGS="ignore",
    )
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise SystemExit(f"worker {device}/{threads} failed (rc {out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ms(v):
    return "n/a" if v is None else f"{v * 1e3:,.0f}"


def _ratio(a, b):
    return None if (a is None or b is None or b == 0) else a / b


def _row(by, key, tokens, field):
    r = by.get(key)
    row = next((x for x in r["rows"] if x["tokens"] == tokens), None) if r else None
    return row[field] if row else None


def report(results: list, info: dict, args) -> str:
    """Markdown: the main table, growth with length, ratios, goals."""
    by = {(r["device"], r["threads"], r["model"]): r for r in results}
    all_lengths = sorted({row["tokens"] for r in results for row in r["rows"]})
    setups = sorted(
        {(r["device"], r["threads"]) for r in results},
        key=lambda s: (s[0] != "cpu", s[1]),
    )
    lines = [
        "## Inference speed (random weights, matched work)",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores visible"
        + (f", GPU {info['gpu']}" if info.get("gpu") else ", no GPU")
        + f"; Python {info['python']}, torch {info['torch']}, espnet "
        f"{info.get('espnet', '?')}; {info['date']}; load average before "
        f"{info['load_before'][0]:.2f}, after {info['load_after'][0]:.2f}.",
        "",
        f"Output frames = {args.frames_per_token} x tokens (LJSpeech's average rate), "
        f"identical for every model; Griffin-Lim {args.griffin_lim_iters} iterations. "
        "Times are medians; RTF = time / audio duration; memory: peak of live tensor "
        "storage during synthesis, weights excluded (CUDA: max_memory_allocated above "
        "the loaded model).",
        "",
    ]
    for dev, threads in setups:
        where = (
            f"{dev.upper()}, {threads} thread{'s' if threads > 1 else ''}"
            if dev == "cpu"
            else f"{dev} (CUDA, synchronised)"
        )
        first = next(r for (d, th, _), r in by.items() if (d, th) == (dev, threads))
        lines += [
            f"### {where}",
            "",
            f"Run {first.get('date', '?')}; 1-minute load average "
            f"{first.get('load', ['?'])[0]} at the start, {first.get('load', ['?'])[-1]} "
            "at the end.",
            "",
            "| model | params | tokens | frames | audio (s) | features (ms) | RTF | "
            "+ Griffin-Lim (ms) | RTF | peak mem (MB) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for m in args.models:
            r = by.get((dev, threads, m))
            if not r:
                continue
            for row_i, row in enumerate(r["rows"]):
                rtf = "n/a" if row["feat_rtf"] is None else f"{row['feat_rtf']:.3f}"
                trtf = "n/a" if row["total_rtf"] is None else f"{row['total_rtf']:.3f}"
                mem = row["peak_mem_mb"]
                if (
                    mem is None
                ):  # measured once per device (thread count does not change it)
                    mem = next(
                        (
                            x["peak_mem_mb"]
                            for y in results
                            if y["device"] == dev and y["model"] == m
                            for x in y["rows"]
                            if x["tokens"] == row["tokens"]
                            and x["peak_mem_mb"] is not None
                        ),
                        None,
                    )
                mem = "n/a" if mem is None else f"{mem:.1f}"
                lines.append(
                    f"| {LABELS[m]} | {r['params'] / 1e6:.1f}M | {row['tokens']} | "
                    f"{row['frames']} | {row['audio_s']:.1f} | {_ms(row['feat_s'])} | "
                    f"{rtf} | {_ms(row['total_s'])} | {trtf} | "
                    f"{mem} |"
                )
        lines.append("")
        # Growth with length and ratios
        lengths = sorted(
            {
                row["tokens"]
                for (d, th, _), r in by.items()
                if (d, th) == (dev, threads)
                for row in r["rows"]
            }
        )
        if len(lengths) > 1:
            lines += [
                f"Time against length ({where}): ms per second of audio, and time "
                f"relative to {lengths[0]} tokens",
                "",
                "| model | "
                + " | ".join(f"{n} tok: ms/s audio" for n in lengths)
                + " | "
                + " | ".join(f"x at {n}" for n in lengths[1:])
                + " |",
                "|---" * (2 * len(lengths)) + "|",
            ]
        for m in args.models:
            r = by.get((dev, threads, m))
            if len(lengths) < 2 or not r or len(r["rows"]) < 2:
                continue
            t = [
                row["feat_s"] if row["feat_s"] is not None else row["total_s"]
                for row in r["rows"]
            ]
            per_s = [
                f"{ti / row['audio_s'] * 1e3:.0f}" for ti, row in zip(t, r["rows"])
            ]
            growth = [f"{ti / t[0]:.1f}" for ti in t[1:]]
            lines.append(
                f"| {LABELS[m]} | "
                + " | ".join(per_s)
                + " | "
                + " | ".join(growth)
                + " |"
            )
        lines += ["", f"Ratios ({where}, same run):", ""]
        for n in lengths:

            def t(m, key="feat_s"):
                return _row(by, (dev, threads, m), n, key)

            parts = []
            for label, a, b in (
                ("Tacotron2 / Glow-TTS", t("tacotron2"), t("glow_tts")),
                ("Glow-TTS / FastSpeech2", t("glow_tts"), t("fastspeech2")),
                ("plain / optimised Glow-TTS", t("glow_tts_plain"), t("glow_tts")),
                (
                    "VITS (wav) / Glow-TTS + Griffin-Lim",
                    t("vits", "total_s"),
                    t("glow_tts", "total_s"),
                ),
            ):
                v = _ratio(a, b)
                if v is not None:
                    parts.append(f"{label} = {v:.2f}")
            lines.append(f"- {n} tokens: " + "; ".join(parts))
        lines.append("")
    # Goals (2 CPU threads at the average length)
    avg = 180 if 180 in all_lengths else all_lengths[len(all_lengths) // 2]
    goal_threads = (
        2
        if ("cpu", 2, "glow_tts") in by
        else max((t for d, t, m in by if d == "cpu"), default=None)
    )
    if goal_threads is not None:

        def tt(m):
            return _row(by, ("cpu", goal_threads, m), avg, "feat_s")

        speedup = _ratio(tt("tacotron2"), tt("glow_tts"))
        vs_fs2 = _ratio(tt("glow_tts"), tt("fastspeech2"))
        lines += [f"### Goals (CPU, {goal_threads} threads, {avg} tokens)", ""]
        if speedup is not None:
            lines.append(
                f"- Glow-TTS at least 15x faster than Tacotron2: {speedup:.1f}x -> "
                f"{'MET' if speedup >= 15 else 'MISSED'}"
            )
        if vs_fs2 is not None:
            lines.append(
                f"- Glow-TTS within 1.5x of FastSpeech2's time: {vs_fs2:.2f}x -> "
                f"{'MET' if vs_fs2 <= 1.5 else 'MISSED'}"
            )
        lines.append("")
    return "\n".join(lines)


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument(
        "--lengths",
        nargs="+",
        type=int,
        default=[40, 180, 500],
        help="input token lengths (short, average, long)",
    )
    parser.add_argument(
        "--threads", nargs="+", type=int, default=[1, 2], help="CPU thread counts"
    )
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto: CPU, and CUDA too when available",
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed runs (at most)")
    parser.add_argument("--min_repeats", type=int, default=3)
    parser.add_argument(
        "--max_seconds",
        type=float,
        default=60.0,
        help="stop repeating a cell after this much time (min_repeats kept)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per length")
    parser.add_argument(
        "--griffin_lim_iters",
        type=int,
        default=32,
        help="as conf/griffin_lim.yaml; 0 skips Griffin-Lim",
    )
    parser.add_argument("--frames_per_token", type=float, default=FRAMES_PER_TOKEN)
    parser.add_argument("--out_json", default="bench/results/inference_speed.json")
    parser.add_argument("--out_md", default="bench/results/inference_speed.md")
    parser.add_argument(
        "--memory",
        type=lambda v: v.lower() in ("1", "true", "yes"),
        default=True,
        help="measure peak tensor memory (one untimed run "
        "per model and length, on the first thread count)",
    )
    parser.add_argument(
        "--merge",
        nargs="*",
        default=[],
        help="JSON files of earlier runs (other thread counts or devices) "
        "to report together with this one; ratios stay per run",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(cmd)

    if args.worker:
        if args.device == "auto":
            args.device = "cpu"
        args.threads = args.threads[0]
        print(json.dumps(worker(args)))
        return

    import torch

    info = machine_info()
    devices = ["cpu"] if args.device == "cpu" else []
    if args.device in ("auto", "cuda"):
        if torch.cuda.is_available():
            devices.append("cuda")
        elif args.device == "cuda":
            raise SystemExit("--device cuda: CUDA is not available")
        else:
            devices.insert(0, "cpu")
            print("NOTE: no CUDA device: GPU timings not measured", file=sys.stderr)
    if args.device == "auto" and "cpu" not in devices:
        devices.insert(0, "cpu")
    print(f"machine: {info}", file=sys.stderr)
    results = []
    for device in devices:
        for i, threads in enumerate(
            args.threads if device == "cpu" else [max(args.threads)]
        ):
            results += run_worker(device, threads, args, memory=args.memory and i == 0)
    info["load_after"] = os.getloadavg()
    runs = [dict(machine=info, threads=args.threads, lengths=args.lengths)]
    for path in args.merge:
        earlier = json.loads(Path(path).read_text())
        done = {(r["device"], r["threads"]) for r in results}
        results += [
            r for r in earlier["results"] if (r["device"], r["threads"]) not in done
        ]
        runs += earlier.get("runs", [dict(machine=earlier["machine"])])
    md = report(results, info, args)
    print(md)
    for path, text in (
        (
            args.out_json,
            json.dumps(
                dict(machine=info, args=vars(args), runs=runs, results=results),
                indent=1,
            ),
        ),
        (args.out_md, md),
    ):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text + "\n")
            print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
