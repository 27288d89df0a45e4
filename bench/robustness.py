#!/usr/bin/env python
"""Long-input robustness: CER against input length for trained models (issue 5, claim 3).

The Glow-TTS paper reports that Tacotron 2's character error rate climbs on inputs past
about 260 characters while Glow-TTS stays flat. This script builds test inputs of growing
length by concatenating held-out sentences (about 100, 250, 500 and 1000 characters),
synthesises each with every model through ESPnet's ``Text2Speech`` (Griffin-Lim, as the
recipe's decoding), transcribes the audio with the recipe's offline ASR (Whisper tiny.en
through faster-whisper, ``glowtts_recipe.score``) and reports CER per length.

    python bench/robustness.py --text egs2/ljspeech/tts_glow/dump/raw/eval1/text \\
        --model Glow-TTS=egs2/.../exp/tts_glow:train.loss.ave.pth \\
        --model Tacotron2=egs2/.../exp/compare/tts_tacotron2_mini:train.loss.ave.pth \\
        --model FastSpeech2=egs2/.../exp/compare/tts_fastspeech2_mini:train.loss.ave.pth \\
        --vocoder_config egs2/ljspeech/tts_glow/conf/griffin_lim.yaml --run_dir exp_robust

Paths inside the experiments' config.yaml (token list, statistics) are relative to the
recipe directory, so run it from there or pass ``--chdir`` (the recipe directory).
Tacotron2 decodes with ESPnet's defaults (stop threshold 0.5, at most 10 frames per
token); the report counts the inputs where it never stopped.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

TARGETS = (100, 250, 500, 1000)


def read_sentences(path: str):
    """Sentences from a Kaldi ``text`` file (``utt text``) or one sentence a line."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        first, _, rest = line.partition(" ")
        # Kaldi ids carry digits (LJ050-0001, ESPK-00241); the sentences here have none.
        out.append(rest.strip() if rest and any(c.isdigit() for c in first) else line)
    return out


def build_inputs(sentences, targets=TARGETS, per_length: int = 2):
    """Inputs of about ``target`` characters: consecutive sentences, joined by spaces.

    Each input starts at a different sentence (cycling through the list), and sentences are
    added while the text stays closest to the target.
    """
    if not sentences:
        raise ValueError("no sentences")
    inputs, start = [], 0
    for target in targets:
        for k in range(per_length):
            parts, i = [], start
            while True:
                s = sentences[i % len(sentences)]
                joined = " ".join(parts + [s])
                if parts and abs(len(joined) - target) > abs(
                    len(" ".join(parts)) - target
                ):
                    break
                parts.append(s)
                i += 1
                if i - start > 10 * len(sentences):
                    break
            start = i
            inputs.append(
                dict(id=f"len{target}_{k}", target=target, text=" ".join(parts))
            )
    return inputs


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--text",
        required=True,
        help="held-out sentences: a Kaldi text file or one a line",
    )
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        help="NAME=EXP_DIR:MODEL_FILE (config.yaml in EXP_DIR); repeat",
    )
    parser.add_argument("--targets", nargs="+", type=int, default=list(TARGETS))
    parser.add_argument("--per_length", type=int, default=2, help="inputs per length")
    parser.add_argument("--vocoder_config", default="conf/griffin_lim.yaml")
    parser.add_argument("--noise_scale", type=float, default=0.333, help="Glow-TTS")
    parser.add_argument("--chdir", default=None, help="run from here (the recipe dir)")
    parser.add_argument("--run_dir", default="exp/robustness", help="wavs and results")
    parser.add_argument("--out_md", default=None, help="default: RUN_DIR/robustness.md")
    args = parser.parse_args(cmd)

    text_path = os.path.abspath(args.text)
    if args.chdir:
        os.chdir(args.chdir)
    import soundfile as sf
    import torch
    from espnet2.bin.tts_inference import Text2Speech

    import espnet_glowtts  # noqa: F401  (registers glow_tts)
    from glowtts_recipe.score import error_rates, load_asr

    transcribe, asr_name = load_asr()
    if transcribe is None:
        raise SystemExit(f"ERROR: {asr_name}")
    inputs = build_inputs(read_sentences(text_path), args.targets, args.per_length)
    run_dir = Path(args.run_dir)
    results = dict(asr=asr_name, inputs=inputs, models={})
    for spec in args.model:
        name, _, where = spec.partition("=")
        exp_dir, _, model_file = where.partition(":")
        tts = Text2Speech(
            train_config=str(Path(exp_dir) / "config.yaml"),
            model_file=str(Path(exp_dir) / (model_file or "train.loss.ave.pth")),
            vocoder_config=args.vocoder_config,
            noise_scale=args.noise_scale,
            device="cpu",
        )
        fs = tts.fs
        rows = []
        for item in inputs:
            start = time.perf_counter()
            with torch.no_grad():
                out = tts(item["text"])
            seconds = time.perf_counter() - start
            wav = out["wav"].view(-1).cpu().numpy()
            path = run_dir / name.replace(" ", "_") / f"{item['id']}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), wav, fs, subtype="PCM_16")
            hyp = transcribe(str(path))
            n_tokens = int(
                len(tts.preprocess_fn("<dummy>", dict(text=item["text"]))["text"])
            )
            frames = (
                int(out["feat_gen"].shape[0])
                if out.get("feat_gen") is not None
                else None
            )
            row = dict(
                id=item["id"],
                target=item["target"],
                chars=len(item["text"]),
                tokens=n_tokens,
                frames=frames,
                audio_s=round(len(wav) / fs, 2),
                synth_s=round(seconds, 2),
                hyp=hyp.strip(),
                **error_rates([item["text"]], [hyp]),
            )
            # Tacotron2 without a stop: it ran to maxlenratio (10 frames per token + eos).
            if frames is not None and type(tts.tts).__name__ == "Tacotron2":
                row["no_stop"] = frames >= 10 * (n_tokens + 1)
            rows.append(row)
            print(
                f"{name:28s} {item['id']:10s} {row['chars']:5d} chars: CER {row['cer']:6.2f}"
                f" % ({row['audio_s']} s audio, {seconds:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
        results["models"][name] = rows

    lines = [
        "## Robustness to long inputs: CER (%) against input length",
        "",
        f"ASR: {asr_name}. Inputs: held-out sentences from {args.text} concatenated to "
        f"about {', '.join(map(str, args.targets))} characters, {args.per_length} per "
        "length; Griffin-Lim vocoder. Each cell: CER over the inputs of that length "
        "(edit distance / reference characters).",
        "",
        "| model | " + " | ".join(f"~{t} chars" for t in args.targets) + " |",
        "|---" * (1 + len(args.targets)) + "|",
    ]
    for name, rows in results["models"].items():
        cells = []
        for t in args.targets:
            sel = [r for r in rows if r["target"] == t]
            refs = [i["text"] for i in inputs if i["target"] == t]
            cer = error_rates(refs, [r["hyp"] for r in sel])["cer"]
            stops = sum(bool(r.get("no_stop")) for r in sel)
            cells.append(f"{cer:.1f}" + (f" ({stops} no stop)" if stops else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Actual lengths (characters): "
        + ", ".join(f"{i['id']}={len(i['text'])}" for i in inputs),
        "",
    ]
    md = "\n".join(lines)
    print(md)
    out_md = Path(args.out_md or run_dir / "robustness.md")
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(md + "\n")
    (run_dir / "robustness.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out_md} and {run_dir / 'robustness.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
