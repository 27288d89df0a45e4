"""Glow-TTS as ESPnet's duration teacher: MAS durations for FastSpeech/FastSpeech2 training.

For every utterance of a data directory (``text``, ``wav.scp``), the trained Glow-TTS aligns
the real features with Monotonic Alignment Search (teacher forcing: the flows map the
normalised features to latents, MAS finds the most likely monotonic path to the token
priors). The result is written in the format ESPnet's FastSpeech2 reads as a
``durations,durations,text_int`` data file::

    <utt-id> d_1 d_2 ... d_N d_eos

with one entry per input token plus one for the ``<sos/eos>`` that FastSpeech2 appends
(0 frames here), summing exactly to the number of feature frames ESPnet extracts from the
wav with the same feature settings (what ``_average_by_duration`` in ESPnet's pitch and
energy extractors asserts). The frames of the blanks Glow-TTS inserts between tokens are
given back to the neighbouring tokens. No external aligner is involved.

    python -m glowtts_recipe.teacher_durations \\
        --train_config exp/tts_glow/config.yaml --model_file exp/tts_glow/train.loss.ave.pth \\
        --data_dir dump/raw/tr_no_dev --out_dir exp/teacher/tr_no_dev

The features, tokens and normalisation are those of the Glow-TTS experiment, taken from its
``config.yaml``: a FastSpeech2 trained on these durations must use the same token list and
feature settings (``scripts/compare.sh`` does).
"""

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from glowtts_recipe.datadir import DataError, atomic_write, main_guard, read_kv


def format_line(utt: str, durations) -> str:
    """``utt d_1 ... d_N 0``: the token durations and 0 frames for <sos/eos>."""
    return utt + " " + " ".join(str(int(d)) for d in durations) + " 0"


def check_durations(durations: Dict[str, List[int]], token_counts: Dict[str, int],
                    feats_lengths: Dict[str, int]) -> None:
    """Raise DataError unless every entry has N + 1 values summing to the frame count."""
    for utt, d in durations.items():
        if len(d) != token_counts[utt] + 1:
            raise DataError(f"{utt}: {len(d)} durations for {token_counts[utt]} tokens "
                            "(FastSpeech2 needs T_text + 1, with <sos/eos>)")
        if sum(d) != feats_lengths[utt]:
            raise DataError(f"{utt}: durations sum to {sum(d)}, the features have "
                            f"{feats_lengths[utt]} frames")
        if min(d[:-1]) < 0:
            raise DataError(f"{utt}: negative duration")


def read_durations(path) -> Dict[str, List[int]]:
    return {u: [int(x) for x in v.split()] for u, v in read_kv(path).items()}


def teacher_durations(train_config: str, model_file: str, data_dir: str, out_dir: str,
                      batch_size: int = 8, device: str = "cpu", num_workers: int = 0
                      ) -> Dict[str, List[int]]:
    """Align every utterance of ``data_dir`` and write ``out_dir/durations``."""
    import torch

    import espnet_glowtts  # noqa: F401  (registers glow_tts)
    from espnet2.tasks.tts import TTSTask

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    for name in ("text", "wav.scp"):
        if not (data_dir / name).is_file():
            raise DataError(f"{data_dir / name}: missing")
    model, train_args = TTSTask.build_model_from_file(train_config, model_file, device)
    model.eval()
    if not isinstance(model.tts, espnet_glowtts.GlowTTS):
        raise DataError(f"{train_config}: the teacher must be a glow_tts model, got "
                        f"{type(model.tts).__name__}")
    loader = TTSTask.build_streaming_iterator(
        data_path_and_name_and_type=[(str(data_dir / "text"), "text", "text"),
                                     (str(data_dir / "wav.scp"), "speech", "sound")],
        dtype="float32", batch_size=batch_size, num_workers=num_workers,
        preprocess_fn=TTSTask.build_preprocess_fn(train_args, False),
        collate_fn=TTSTask.build_collate_fn(train_args, False),
        allow_variable_data_keys=False, inference=True)

    durations, counts, frames = {}, {}, {}
    start = time.time()
    with torch.no_grad():
        for keys, batch in loader:
            text = batch["text"].to(device)
            text_lengths = batch["text_lengths"].to(device)
            speech = batch["speech"].to(device)
            speech_lengths = batch["speech_lengths"].to(device)
            feats, feats_lengths = model.feats_extract(speech, speech_lengths)
            if model.normalize is not None:
                feats, feats_lengths = model.normalize(feats, feats_lengths)
            out = model.tts.batch_inference(text, text_lengths, feats=feats,
                                            feats_lengths=feats_lengths,
                                            use_teacher_forcing=True, noise_scale=0.0)
            for i, utt in enumerate(keys):
                n = int(text_lengths[i])
                d = out["duration"][i, :n].long().tolist() + [0]
                durations[utt], counts[utt], frames[utt] = d, n, int(feats_lengths[i])
    check_durations(durations, counts, frames)
    atomic_write(out_dir / "durations",
                 "".join(format_line(u, durations[u][:-1]) + "\n" for u in sorted(durations)))
    total = sum(frames.values())
    mean_d = np.mean([x for d in durations.values() for x in d[:-1]])
    print(f"{out_dir}/durations: {len(durations)} utterances, {total} frames, mean "
          f"{mean_d:.2f} frames per token ({time.time() - start:.0f} s)", file=sys.stderr)
    return durations


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_config", required=True, help="Glow-TTS config.yaml")
    parser.add_argument("--model_file", required=True, help="Glow-TTS .pth")
    parser.add_argument("--data_dir", required=True, help="with text and wav.scp")
    parser.add_argument("--out_dir", required=True, help="gets out_dir/durations")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--num_workers", type=int, default=0)
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.WARNING)
    teacher_durations(args.train_config, args.model_file, args.data_dir, args.out_dir,
                      args.batch_size, "cuda" if args.ngpu > 0 else "cpu", args.num_workers)


if __name__ == "__main__":
    main_guard(main)
