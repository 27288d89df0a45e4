#!/usr/bin/env python
"""ONNX runtime against torch eager for Glow-TTS (issue 11).

For the paper-size (conf/tuning/train_glow_tts.yaml, 28.6M parameters) and mini
(train_glow_tts_mini.yaml) models, with random weights (durations set to about 5.6 frames
per input token, LJSpeech's rate), at 40/180/500 input tokens and 1 and 2 threads:

* features: torch eager ``GlowTTS.inference`` vs onnxruntime (encoder graph, numpy path,
  decoder graph) at noise_scale 0.333, median of ``--repeats`` interleaved runs; the
  export's default decoder (Winograd couplings) and its 4-D convolution form, both timed;
* int8 dynamic quantization (onnxruntime.quantization): its speed, and the mel-cepstral
  distortion of its features from the fp32 graphs' at noise_scale 0 (MCD from the DCT of
  the log-mel frames, coefficients 1..24, frames paired up to the shorter output);
* end to end: the runtime with its numpy Griffin-Lim, and torch with ESPnet's librosa
  Griffin-Lim (32 iterations), as real-time factors.

Ratios are from the same run. Each thread count runs in its own process.

    python bench/onnx_speed.py --out_md bench/results/onnx.md
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FS, N_FFT, N_SHIFT, N_MELS = 22050, 1024, 256, 80
ROOT = Path(__file__).resolve().parents[1]
FRAMES_PER_TOKEN = 5.6  # LJSpeech, as in bench/inference_speed.py
CHARS = "abcdefghijklmnopqrstuvwxyz '.,?!-"


# ---------------------------------------------------------------------------------------
# A random-weights ESPnet experiment (config.yaml + model.pth + feats_stats.npz), loadable
# like a trained one. Also used by tests/test_onnx.py.
def make_experiment(
    root,
    tts_conf: dict,
    texts,
    token_type: str = "phn",
    cleaner: str = "tacotron",
    g2p: str = "espeak_ng_english_us_vits",
    fs: int = FS,
    n_fft: int = N_FFT,
    n_shift: int = N_SHIFT,
    n_mels: int = N_MELS,
    seed: int = 0,
    flow_scale: float = 0.05,
):
    """Write an experiment directory whose token list covers ``texts``; returns its path."""
    import numpy as np
    import torch
    import yaml
    from espnet2.tasks.tts import TTSTask
    from espnet2.text.build_tokenizer import build_tokenizer
    from espnet2.text.cleaner import TextCleaner

    import espnet_glowtts  # noqa: F401  (registers glow_tts)

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    clean = TextCleaner(None if cleaner == "none" else cleaner)
    tokenizer = build_tokenizer(token_type, g2p_type=None if g2p == "none" else g2p)
    symbols = sorted({t for text in texts for t in tokenizer.text2tokens(clean(text))})
    token_list = ["<blank>", "<unk>", *symbols, "<sos/eos>"]
    rng = np.random.default_rng(seed)
    mean = rng.uniform(-3.0, -1.0, n_mels)
    std = rng.uniform(0.5, 1.0, n_mels)
    count = 1000
    np.savez(
        root / "feats_stats.npz",
        count=np.array(count),
        sum=mean * count,
        sum_square=(std**2 + mean**2) * count,
    )
    parser = TTSTask.get_parser()
    args = parser.parse_args(
        [
            "--output_dir",
            str(root),
            "--token_type",
            token_type,
            "--cleaner",
            cleaner,
            "--g2p",
            g2p,
            "--tts",
            "glow_tts",
            "--feats_extract",
            "fbank",
            "--normalize",
            "global_mvn",
            "--normalize_conf",
            f"stats_file={root / 'feats_stats.npz'}",
            "--token_list",
            str(root / "tokens.txt"),
        ]
    )
    args.token_list = token_list
    args.tts_conf = dict(tts_conf)
    args.feats_extract_conf = dict(
        fs=fs, n_fft=n_fft, hop_length=n_shift, win_length=n_fft, n_mels=n_mels
    )
    torch.manual_seed(seed)
    model = TTSTask.build_model(args)
    with torch.no_grad():  # move every flow off the identity it starts as
        for name, p in model.tts.named_parameters():
            if name.startswith("decoder.") and (
                "end." in name or "log_scale" in name or name.endswith(".bias")
            ):
                p.normal_(0.0, flow_scale)
    for module in model.modules():
        if hasattr(module, "initialized"):
            module.initialized.fill_(True)
    (root / "config.yaml").write_text(yaml.safe_dump(vars(args), sort_keys=False))
    torch.save(model.state_dict(), root / "model.pth")
    return root


def _tts_conf(name: str) -> dict:
    import yaml

    conf = (
        ROOT
        / "conf"
        / "tuning"
        / f"train_glow_tts{'' if name == 'paper' else '_mini'}.yaml"
    )
    return yaml.safe_load(conf.read_text())["tts_conf"]


def _set_duration(espnet_model, frames_per_model_token: float) -> None:
    """Make the random duration predictor predict about ``frames_per_model_token``."""
    import math

    import torch

    proj = espnet_model.tts.duration_predictor.proj
    with torch.no_grad():
        proj.weight.mul_(0.01)
        proj.bias.fill_(math.log(frames_per_model_token))


def _mcd(a, b) -> float:
    """Mel-cepstral distortion (dB) of two log10-mel sequences (T, n_mels), c1..c24."""
    import numpy as np
    from scipy.fft import dct

    n = min(len(a), len(b))
    ca = dct(np.log(10.0) * a[:n], type=2, norm="ortho", axis=1)[:, 1:25]
    cb = dct(np.log(10.0) * b[:n], type=2, norm="ortho", axis=1)[:, 1:25]
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * ((ca - cb) ** 2).sum(1))))


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_threads(threads: int, work: Path, repeats: int, lengths) -> list:
    """All measurements at one thread count (called in its own process)."""
    import numpy as np
    import torch
    from espnet2.tasks.tts import TTSTask
    from espnet2.utils.griffin_lim import Spectrogram2Waveform

    from espnet_glowtts.bin.export_onnx import export
    from espnet_glowtts.runtime import Synthesizer

    torch.set_num_threads(threads)
    rows = []
    for name in ("mini", "paper"):
        exp = work / name
        if not (exp / "model.pth").exists():
            make_experiment(
                exp,
                _tts_conf(name),
                [CHARS],
                token_type="char",
                cleaner="none",
                g2p="none",
            )
            model, _ = TTSTask.build_model_from_file(
                exp / "config.yaml", exp / "model.pth"
            )
            # blanks double the tokens: 5.6 frames per input token = 2.8 per model token
            _set_duration(model, FRAMES_PER_TOKEN / 2)
            torch.save(model.state_dict(), exp / "model.pth")
            export(str(exp), work / f"{name}_onnx", int8=True, check_text="a test.")
        if not (work / f"{name}_onnx_4d").exists():
            export(str(exp), work / f"{name}_onnx_4d", check_text="a.", winograd=False)
        model, _ = TTSTask.build_model_from_file(exp / "config.yaml", exp / "model.pth")
        model.eval()
        tts = model.tts
        params = sum(p.numel() for p in tts.parameters())
        fp32 = Synthesizer(work / f"{name}_onnx", num_threads=threads, seed=0)
        int8 = Synthesizer(
            work / f"{name}_onnx", num_threads=threads, seed=0, quantized=True
        )
        conv4d = Synthesizer(work / f"{name}_onnx_4d", num_threads=threads, seed=0)
        gl = Spectrogram2Waveform(
            **model.feats_extract.get_parameters(), griffin_lim_iters=32
        )
        rng = np.random.default_rng(0)
        for length in lengths:
            ids = rng.integers(2, len(fp32.config["token_list"]) - 1, length)
            tids = torch.as_tensor(ids)

            def torch_feats():
                with torch.no_grad():
                    return tts.inference(tids, noise_scale=0.333)

            def torch_e2e():
                out = torch_feats()
                feats = model.normalize.inverse(out["feat_gen"][None])[0][0]
                return gl(feats)

            fns = dict(
                torch=torch_feats,
                ort=lambda: fp32.synthesize_ids(ids, noise_scale=0.333, vocoder=False),
                ort_4d=lambda: conv4d.synthesize_ids(
                    ids, noise_scale=0.333, vocoder=False
                ),
                ort_int8=lambda: int8.synthesize_ids(
                    ids, noise_scale=0.333, vocoder=False
                ),
                torch_e2e=torch_e2e,
                ort_e2e=lambda: fp32.synthesize_ids(ids, noise_scale=0.333),
            )
            for fn in fns.values():  # warm-up
                fn()
            times = {k: [] for k in fns}
            for r in range(repeats):  # interleaved rounds, rotating order
                keys = list(fns)[r % len(fns) :] + list(fns)[: r % len(fns)]
                for k in keys:
                    times[k].append(_median_time(fns[k], 1))
            med = {k: statistics.median(v) for k, v in times.items()}
            ref = fp32.synthesize_ids(ids, noise_scale=0.0, vocoder=False)
            q = int8.synthesize_ids(ids, noise_scale=0.0, vocoder=False)
            frames = len(ref["feat_gen"])
            seconds = frames * N_SHIFT / FS
            rows.append(
                dict(
                    model=name,
                    params=params,
                    threads=threads,
                    tokens=length,
                    frames=frames,
                    audio_s=seconds,
                    **{f"{k}_s": v for k, v in med.items()},
                    ort_over_torch=med["ort"] / med["torch"],
                    ort_4d_over_torch=med["ort_4d"] / med["torch"],
                    int8_over_fp32=med["ort_int8"] / med["ort"],
                    int8_mcd_db=_mcd(q["feat_gen_denorm"], ref["feat_gen_denorm"]),
                    int8_same_durations=bool(
                        np.array_equal(q["duration"], ref["duration"])
                    ),
                    rtf_ort_e2e=med["ort_e2e"] / seconds,
                    rtf_torch_e2e=med["torch_e2e"] / seconds,
                )
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def markdown(rows, load: str) -> str:
    lines = [
        f"Machine load during the run: {load}.",
        "",
        "| model | threads | tokens | frames | torch feats (s) | ORT feats (s) | ORT/torch "
        "| ORT 4-D convs/torch | int8 (s) | int8/fp32 | int8 MCD (dB) "
        "| int8 same durations | RTF ORT+GL | RTF torch+GL |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} ({r['params'] / 1e6:.1f}M) | {r['threads']} | {r['tokens']} "
            f"| {r['frames']} | {r['torch_s']:.3f} | {r['ort_s']:.3f} "
            f"| {r['ort_over_torch']:.2f}x | {r['ort_4d_over_torch']:.2f}x "
            f"| {r['ort_int8_s']:.3f} "
            f"| {r['int8_over_fp32']:.2f}x | {r['int8_mcd_db']:.2f} "
            f"| {'yes' if r['int8_same_durations'] else 'no'} | {r['rtf_ort_e2e']:.3f} "
            f"| {r['rtf_torch_e2e']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--lengths", type=int, nargs="+", default=[40, 180, 500])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work_dir", default=None, help="models (default: a temp dir)")
    parser.add_argument("--out_json", default=None)
    parser.add_argument("--out_md", default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        rows = run_threads(args.child, Path(args.work_dir), args.repeats, args.lengths)
        print(json.dumps(rows))
        return
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="onnx_bench."))
    load = f"loadavg {os.getloadavg()[0]:.1f} at start on {os.cpu_count()} cores"
    rows = []
    for threads in args.threads:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(threads),
                "--work_dir",
                str(work),
                "--repeats",
                str(args.repeats),
                "--lengths",
                *map(str, args.lengths),
            ],
            env=env,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        rows += json.loads(out.stdout.strip().splitlines()[-1])
    load += f", {os.getloadavg()[0]:.1f} at end"
    md = markdown(rows, load)
    print(md)
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(rows, indent=1))
    if args.out_md:
        Path(args.out_md).write_text(md)


if __name__ == "__main__":
    main()
