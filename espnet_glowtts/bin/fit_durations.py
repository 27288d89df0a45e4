# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

r"""Fit the duration predictor of a trained Glow-TTS to that model's own alignments.

During training, MAS hands a pause to whichever of several neighbouring tokens has a
silence-like prior (the blank before a sentence-final ".", the "." itself, the blank after
it), and the winner changes from epoch to epoch. The duration predictor, regressing log
durations, lags these moves and settles near their geometric mean: on the built-in corpus
it gives each of the three tokens 2.5-8 frames where MAS gives one of them 23-25, so the
synthesis ends early and pauses are short. Averaging checkpoints (ESPnet's
``train.loss.ave.pth``) averages predictors that followed different alignments. This
command refits only the duration predictor, with the paper's loss, to the alignments of
the final (averaged) model; the encoder, the flows and thus the alignments are unchanged.

Usage (run where the training ran; the training data is read from the config)::

    python -m espnet_glowtts.bin.fit_durations \
        --train_config exp/tts_train/config.yaml \
        --model_file exp/tts_train/train.loss.ave.pth \
        --out exp/tts_train/train.loss.ave.pth --steps 400
"""

import argparse
import logging
import os
import random
import sys
from typing import Dict, List, Optional

import numpy as np
import torch
import yaml
from espnet2.tasks.tts import TTSTask
from espnet2.train.dataset import ESPnetDataset

import espnet_glowtts  # noqa: F401  (registers glow_tts)
from espnet_glowtts.bin.tts_train import atomic_torch_save

MODEL_INPUTS = ("text", "speech", "spembs", "sids", "lids")


def get_parser() -> argparse.ArgumentParser:
    """Command-line options.

    Returns:
        argparse.ArgumentParser: The parser.

    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train_config", required=True, help="the model's config.yaml")
    parser.add_argument("--model_file", required=True, help="the trained .pth")
    parser.add_argument(
        "--out",
        required=True,
        help="where to write the fitted .pth (may be model_file)",
    )
    parser.add_argument("--steps", type=int, default=400, help="optimizer steps")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0, help="shuffles the utterances")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--eval_batches",
        type=int,
        default=32,
        help="batches over which the duration loss is reported before and after",
    )
    return parser


def check_inputs(args) -> None:
    """Clear errors for what the model and its training data need, before loading."""
    if args.steps < 1 or args.batch_size < 1 or args.lr <= 0:
        raise ValueError("--steps and --batch_size must be >= 1 and --lr > 0")
    for path in (args.train_config, args.model_file):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such file")
    with open(args.train_config, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if config.get("tts") != "glow_tts":
        raise ValueError(
            f"{args.train_config}: the model is {config.get('tts')}, not glow_tts"
        )
    needed = [e[0] for e in config.get("train_data_path_and_name_and_type") or []]
    needed += [(config.get("normalize_conf") or {}).get("stats_file")]
    missing = [p for p in needed if p and not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(
            f"{args.train_config} names {missing[0]}, which is not here: run this where "
            "the training ran (e.g. in the recipe directory)"
        )


def training_batches(args, train_args):
    """Shuffled batches of the training data named in the config, through ESPnet's
    dataset, preprocessing and collation, without end."""
    entries = [tuple(e) for e in train_args.train_data_path_and_name_and_type]
    dataset = ESPnetDataset(
        entries, preprocess=TTSTask.build_preprocess_fn(train_args, False)
    )
    collate = TTSTask.build_collate_fn(train_args, False)
    keys = list(next(iter(dataset.loader_dict.values())))
    size = min(args.batch_size, len(keys))
    rng = random.Random(args.seed)
    while True:
        rng.shuffle(keys)
        for i in range(0, len(keys) - size + 1, size):  # full batches only
            _, batch = collate([dataset[k] for k in keys[i : i + size]])
            yield {
                k: v.to(args.device)
                for k, v in batch.items()
                if k.split("_lengths")[0] in MODEL_INPUTS
            }


def duration_loss(model, batches: List[Dict[str, torch.Tensor]]) -> float:
    """Mean duration loss of the model over ``batches``."""
    with torch.no_grad():
        return float(np.mean([model(**b)[1]["duration_loss"].item() for b in batches]))


def fit_durations(model, batches, steps: int, lr: float) -> None:
    """Train ``model.tts.duration_predictor`` only, on the alignments of the rest."""
    predictor = model.tts.duration_predictor
    for p in model.parameters():
        p.requires_grad_(False)
    for p in predictor.parameters():
        p.requires_grad_(True)
    model.eval()
    predictor.train()  # its own dropout, as in training
    optimizer = torch.optim.Adam(predictor.parameters(), lr=lr)
    for step in range(1, steps + 1):
        # The MLE part of the loss carries no gradient here: only the predictor learns.
        loss, stats, _ = model(**next(batches))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == steps:
            logging.info(
                f"step {step}/{steps}: duration_loss={float(stats['duration_loss']):.4f}"
            )
    model.eval()


def main(cmd: Optional[List[str]] = None) -> None:
    """Load the model, fit its duration predictor and write the result atomically.

    Args:
        cmd (Optional[List[str]]): Arguments; ``sys.argv[1:]`` when None.

    Raises:
        ValueError: If the model is not a Glow-TTS or an option is out of range.
        FileNotFoundError: If the model, its config or its training data is missing.

    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s (fit_durations) %(message)s"
    )
    args = get_parser().parse_args(cmd)
    check_inputs(args)
    torch.manual_seed(args.seed)
    model, train_args = TTSTask.build_model_from_file(
        args.train_config, args.model_file, args.device
    )
    batches = training_batches(args, train_args)
    held = [next(batches) for _ in range(args.eval_batches)]
    model.eval()
    before = duration_loss(model, held)
    fit_durations(model, batches, args.steps, args.lr)
    after = duration_loss(model, held)
    logging.info(
        f"duration loss on {args.eval_batches} training batches: "
        f"{before:.4f} before, {after:.4f} after"
    )
    atomic_torch_save()  # a rename replaces a symlink at --out, never its target
    torch.save(model.state_dict(), args.out)
    logging.info(f"wrote {args.out}")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"fit_durations: error: {e}")
