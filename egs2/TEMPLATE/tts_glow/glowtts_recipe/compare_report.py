"""Issue 5, recipe-level comparison: training budgets and the results table.

``summary EXP_DIR [--field F]``: what an ESPnet training run did, from its
``checkpoint.pth`` reporter (JSON on stdout): completed epochs, optimiser steps, training
wall time (train + valid time summed over epochs; process start-up not included; whole
seconds with ``--field train_seconds``).

``table``: one markdown table (model, params, train steps in the budget, training time,
RTF, MCD, log-F0 RMSE, CER, DNSMOS OVRL; mean +- spread over the decoding draws) from
each system's experiment (ESPnet's, or Coqui's ``coqui_run.json``) and its stage-7 scores
(``<decode_dir>/<set>/scores.json``), written to ``--out`` and, between markers, into
``--readme``::

    python -m glowtts_recipe.compare_report table --set eval1 \\
        --system "Glow-TTS=exp/tts_glow:exp/tts_glow/decode_decode_train.loss.ave" \\
        --system "Tacotron2=exp/compare/tts_tacotron2:exp/compare/..." \\
        --out exp/compare/results.md --readme README.md
"""

import argparse
import json
import sys
from pathlib import Path

from glowtts_recipe.coqui_glowtts import RUN_FILE as COQUI_RUN_FILE
from glowtts_recipe.datadir import DataError, atomic_write, main_guard

BEGIN, END = "<!-- compare.sh results: begin -->", "<!-- compare.sh results: end -->"


def _seconds(t) -> float:
    """A reporter time: timedelta, or {"__timedelta_seconds__": s} as checkpoints store it."""
    if t is None:
        return 0.0
    if isinstance(t, dict):
        return float(t.get("__timedelta_seconds__", 0.0))
    return t.total_seconds() if hasattr(t, "total_seconds") else float(t)


def training_summary(exp_dir) -> dict:
    """Epochs, steps and wall time of an ESPnet training run (from checkpoint.pth)."""
    import torch

    ckpt = Path(exp_dir) / "checkpoint.pth"
    if not ckpt.is_file():
        raise DataError(f"{ckpt}: missing (train the model first)")
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    stats = state["reporter"]["stats"]
    epochs = sorted(stats)
    seconds = 0.0
    for e in epochs:
        for part in ("train", "valid"):
            seconds += _seconds(stats[e].get(part, {}).get("time"))
    steps = int(stats[epochs[-1]]["train"]["total_count"]) if epochs else 0
    return dict(epochs=len(epochs), steps=steps, train_seconds=round(seconds, 1))


def count_params(exp_dir, model_file: str) -> int:
    from espnet2.tasks.tts import TTSTask

    import espnet_glowtts  # noqa: F401  (registers glow_tts)

    model, _ = TTSTask.build_model_from_file(
        Path(exp_dir) / "config.yaml", Path(exp_dir) / model_file, "cpu"
    )
    return sum(p.numel() for p in model.tts.parameters())


def _fmt(v, spec=""):
    return "n/a" if v is None else format(v, spec)


def _cell(scores: dict, metric: str) -> str:
    """The synthesis' mean over draws, with its spread when there is one."""
    mean = scores["systems"]["synthesis"].get(metric)
    sd = scores.get("spread", {}).get("synthesis", {}).get(metric)
    return _fmt(mean) + ("" if sd is None or mean is None else f" ± {sd}")


def system_summary(exp_dir, model_file: str) -> tuple:
    """(training summary, parameters) of an ESPnet experiment or a Coqui run."""
    coqui = Path(exp_dir) / COQUI_RUN_FILE
    if coqui.is_file():
        run = json.loads(coqui.read_text())
        return {k: run[k] for k in ("epochs", "steps", "train_seconds")}, run["params"]
    return training_summary(exp_dir), count_params(exp_dir, model_file)


def build_table(systems, test_set: str, model_file: str) -> str:
    rows = [
        "| model | params | train steps in budget | training time | RTF | MCD (dB) | "
        "log-F0 RMSE | CER (%) | DNSMOS OVRL |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for name, exp_dir, decode_dir in systems:
        summary, params = system_summary(exp_dir, model_file)
        scores_file = Path(decode_dir) / test_set / "scores.json"
        if not scores_file.is_file():
            raise DataError(f"{scores_file}: missing (decode and score first: stage 7)")
        scores = json.loads(scores_file.read_text())
        ref_gl = scores["systems"].get("reference_vocoded", {})
        minutes = summary["train_seconds"] / 60
        rows.append(
            f"| {name} | {params / 1e6:.2f}M | {summary['steps']} "
            f"({summary['epochs']} epochs) | {minutes:.1f} min | "
            f"{_fmt(scores.get('rtf'), '.3f')} | "
            + " | ".join(
                _cell(scores, m) for m in ("mcd", "log_f0_rmse", "cer", "dnsmos_ovrl")
            )
            + " |"
        )
        notes.append((ref_gl, scores.get("vocoder", "Griffin-Lim")))
    ref, vocoder = notes[0] if notes else ({}, None)
    text = "\n".join(rows) + "\n"
    if ref:
        text += (
            f"\nReference recordings through the same features and {vocoder} "
            f"(the vocoder's ceiling): MCD {_fmt(ref.get('mcd'))}, log-F0 RMSE "
            f"{_fmt(ref.get('log_f0_rmse'))}, CER {_fmt(ref.get('cer'))}, DNSMOS OVRL "
            f"{_fmt(ref.get('dnsmos_ovrl'))}.\n"
        )
    return text


def put_in_readme(readme: Path, block: str) -> None:
    """Replace the marked block of ``readme`` (append it when absent)."""
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    section = f"{BEGIN}\n{block.rstrip()}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + section
    atomic_write(readme, text)


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary")
    p.add_argument("exp_dir")
    p.add_argument(
        "--field",
        choices=["epochs", "steps", "train_seconds"],
        help="print only this value",
    )
    p = sub.add_parser("table")
    p.add_argument(
        "--system",
        action="append",
        required=True,
        help="NAME=EXP_DIR:DECODE_DIR (repeat; the first is the reference)",
    )
    p.add_argument("--set", required=True, help="test set whose scores go in the table")
    p.add_argument("--model_file", default="train.loss.ave.pth")
    p.add_argument("--title", default="")
    p.add_argument("--out", required=True)
    p.add_argument("--readme")
    args = parser.parse_args(cmd)

    if args.command == "summary":
        summary = training_summary(args.exp_dir)
        if args.field == "train_seconds":  # whole seconds, for the shell's arithmetic
            print(round(summary[args.field]))
        else:
            print(summary[args.field] if args.field else json.dumps(summary))
        return
    systems = []
    for s in args.system:
        name, _, dirs = s.partition("=")
        exp_dir, _, decode_dir = dirs.partition(":")
        if not (name and exp_dir and decode_dir):
            raise DataError(f"--system {s!r}: expected NAME=EXP_DIR:DECODE_DIR")
        systems.append((name, exp_dir, decode_dir))
    block = (args.title + "\n\n" if args.title else "") + build_table(
        systems, args.set, args.model_file
    )
    atomic_write(args.out, block)
    if args.readme:
        put_in_readme(Path(args.readme), block)
    print(block)
    print(
        f"wrote {args.out}"
        + (f" and the section of {args.readme}" if args.readme else ""),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main_guard(main)
