#!/usr/bin/env python
"""CER of the ONNX runtime against the torch model on a test set (issue 11, fidelity).

Synthesizes every utterance of a Kaldi-style ``text`` file (e.g. the demo's
``dump/raw/eval1/text``) with ESPnet's Text2Speech (torch, ESPnet's Griffin-Lim) and with
the exported model (``espnet_glowtts.runtime``, fp32 and, when exported, int8), transcribes
all with the recipe's offline ASR (``glowtts_recipe.score.load_asr``: faster-whisper,
Whisper tiny.en) and reports CER/WER per system, once through each system's own vocoder and
once with every system's features through the same Griffin-Lim from the same initial
phases. Exits 1 when, through the same Griffin-Lim, the fp32 runtime's CER is more than
``--max_cer_gap`` points from torch's (each vocoder's own phase luck moves the CER of
identical features by points).

    python bench/onnx_cer.py --model_tag egs2/ljspeech/tts_glow/exp/tts_glow/model.zip \\
        --text egs2/ljspeech/tts_glow/dump/raw/eval1/text --out_md cer.md
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model_tag", required=True, help="packed zip or experiment dir"
    )
    parser.add_argument(
        "--onnx_dir",
        default=None,
        help="an existing export (default: export into a temp dir)",
    )
    parser.add_argument("--text", required=True, help="'utt_id sentence' lines")
    parser.add_argument("--noise_scale", type=float, default=0.333)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max_cer_gap", type=float, default=0.5)
    parser.add_argument("--out_md", default=None)
    args = parser.parse_args()

    import torch
    from espnet2.bin.tts_inference import Text2Speech

    from espnet_glowtts.bin.export_onnx import export, resolve_model
    from espnet_glowtts.runtime import Synthesizer
    from glowtts_recipe.score import error_rates, load_asr

    transcribe, asr_name = load_asr()
    if transcribe is None:
        sys.exit(f"onnx_cer: {asr_name}")
    work = Path(tempfile.mkdtemp(prefix="onnx_cer."))
    onnx_dir = Path(args.onnx_dir) if args.onnx_dir else work / "onnx"
    if not args.onnx_dir:
        export(args.model_tag, onnx_dir, int8=True)
    utts = [
        line.split(maxsplit=1)
        for line in Path(args.text).read_text().splitlines()
        if line.strip()
    ]
    config, model_file = resolve_model(args.model_tag, None)
    torch.manual_seed(args.seed)
    systems = dict(
        torch=Text2Speech(
            train_config=config, model_file=model_file, noise_scale=args.noise_scale
        )
    )
    systems["onnx_fp32"] = Synthesizer(onnx_dir, seed=args.seed)
    if "encoder_int8" in systems["onnx_fp32"].config["graphs"]:
        systems["onnx_int8"] = Synthesizer(onnx_dir, seed=args.seed, quantized=True)
    refs = [text for _, text in utts]
    # Griffin-Lim starts from random phases, and that luck alone moves the CER of the same
    # features by points: each system's features also go through one Griffin-Lim (the
    # runtime's) from the same phases per utterance, and the gap is measured there.
    same_gl = systems["onnx_fp32"].vocoder
    rates = {}
    for name, tts in systems.items():
        hyps, hyps_same_gl = [], []
        for i, (utt, text) in enumerate(utts):
            if name == "torch":
                out = tts(text)
                wav = out["wav"].view(-1).numpy()
                feats = out["feat_gen_denorm"].numpy()
            else:
                out = tts(text, noise_scale=args.noise_scale)
                wav, feats = out["wav"], out["feat_gen_denorm"]
            same_gl.rng = np.random.default_rng(args.seed + i)
            for wav_i, kind, got in (
                (wav, "own", hyps),
                (same_gl(feats), "same_gl", hyps_same_gl),
            ):
                path = work / f"{name}_{kind}_{utt}.wav"
                sf.write(str(path), wav_i, tts.fs)
                got.append(transcribe(str(path)))
        rates[name] = error_rates(refs, hyps)
        rates[f"{name}, same Griffin-Lim"] = error_rates(refs, hyps_same_gl)
        print(name, rates[name], rates[f"{name}, same Griffin-Lim"], file=sys.stderr)
    gap = (
        rates["onnx_fp32, same Griffin-Lim"]["cer"]
        - rates["torch, same Griffin-Lim"]["cer"]
    )
    lines = [
        f"{len(utts)} utterances of {args.text}, noise_scale {args.noise_scale}, "
        f"ASR {asr_name}",
        "",
        "| system | CER (%) | WER (%) |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {r['cer']:.2f} | {r['wer']:.2f} |" for n, r in rates.items()]
    lines += [
        "",
        f"runtime fp32 - torch through the same Griffin-Lim: {gap:+.2f} CER points "
        f"(limit {args.max_cer_gap}); the other rows use each system's own vocoder",
    ]
    md = "\n".join(lines) + "\n"
    print(md)
    if args.out_md:
        Path(args.out_md).write_text(md)
    sys.exit(0 if abs(gap) <= args.max_cer_gap else 1)


if __name__ == "__main__":
    main()
