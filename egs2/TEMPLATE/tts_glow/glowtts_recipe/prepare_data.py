"""Stage 1: an LJSpeech-layout corpus -> Kaldi-style data directories, checked line by line.

The corpus has ``metadata.csv`` (``id|text|normalized text``) and ``wavs/<id>.wav``. Every
line is checked: three fields, a non-empty normalized transcript, a readable wav. A wav at
another sample rate (or with several channels) is accepted with a notice: stage 2
resamples it. All problems are listed with their file and line, then the stage fails.

The split is LJSpeech's upstream one: the last ``num_dev + num_eval`` lines are held out,
the first ``num_dev`` of those make ``dev`` and the rest ``eval1``; the others are
``tr_no_dev``.

    python -m glowtts_recipe.prepare_data --corpus_dir downloads/LJSpeech-1.1 --out_dir data
"""

import argparse
import sys
from pathlib import Path

import soundfile as sf

from glowtts_recipe.datadir import DataError, main_guard, write_datadir

SPEAKER = "LJ"
MAX_LISTED = 20


def read_corpus(corpus_dir, fs: int):
    """Check ``metadata.csv`` and its wavs; return ``[(utt, wav_path, text)]``."""
    corpus_dir = Path(corpus_dir).resolve()
    if any(c.isspace() for c in str(corpus_dir)):
        raise DataError(f"{corpus_dir}: the corpus path may not contain spaces (wav.scp "
                        "separates fields by spaces); move or link it elsewhere")
    meta = corpus_dir / "metadata.csv"
    if not meta.is_file():
        raise DataError(f"{meta}: not found (is {corpus_dir} an LJSpeech-layout corpus?)")
    items, errors, notices, seen = [], [], [], {}
    with open(meta, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            where = f"{meta}:{lineno}"
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("|")
            if len(fields) < 3 or not fields[0].strip():
                errors.append(f"{where}: expected 3 fields 'id|text|normalized text', got "
                              f"{len(fields)} in {line[:60]!r}")
                continue
            utt, text = fields[0].strip(), " ".join(fields[2].split())
            if utt in seen:
                errors.append(f"{where}: id {utt} repeats line {seen[utt]}")
                continue
            seen[utt] = lineno
            if not text:
                errors.append(f"{where}: empty transcript for {utt}")
                continue
            wav = corpus_dir / "wavs" / f"{utt}.wav"
            if not wav.is_file():
                errors.append(f"{where}: wav file {wav} is missing")
                continue
            try:
                info = sf.info(str(wav))
                if info.frames == 0:
                    raise RuntimeError("no samples")
            except Exception as e:  # soundfile raises several types for broken files
                errors.append(f"{where}: wav file {wav} is unreadable ({e})")
                continue
            if info.samplerate != fs or info.channels != 1:
                notices.append(f"{where}: {wav.name} is {info.samplerate} Hz with "
                               f"{info.channels} channel(s); stage 2 converts it to "
                               f"{fs} Hz mono")
            items.append((utt, str(wav), text))
    for n in notices[:MAX_LISTED]:
        print(f"NOTICE: {n}", file=sys.stderr)
    if len(notices) > MAX_LISTED:
        print(f"NOTICE: ... {len(notices) - MAX_LISTED} more to convert", file=sys.stderr)
    if errors:
        more = f"\n  ... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        raise DataError(f"{len(errors)} problem(s) in the corpus:\n  "
                        + "\n  ".join(errors[:MAX_LISTED]) + more)
    if not items:
        raise DataError(f"{meta}: no utterances")
    return items


def split(items, num_dev: int, num_eval: int):
    """LJSpeech's split: the last ``num_dev + num_eval`` items -> dev, eval; the rest train."""
    held = num_dev + num_eval
    if num_dev < 1 or num_eval < 1 or len(items) <= held:
        raise DataError(f"cannot split {len(items)} utterances into dev={num_dev}, "
                        f"eval={num_eval} and a non-empty training set")
    return items[:-held], items[-held:-num_eval], items[-num_eval:]


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus_dir", required=True)
    parser.add_argument("--out_dir", default="data")
    parser.add_argument("--fs", type=int, default=22050)
    parser.add_argument("--num_dev", type=int, default=250)
    parser.add_argument("--num_eval", type=int, default=250)
    parser.add_argument("--sets", nargs=3, default=["tr_no_dev", "dev", "eval1"],
                        metavar=("TRAIN", "DEV", "EVAL"))
    args = parser.parse_args(cmd)

    items = read_corpus(args.corpus_dir, args.fs)
    for name, part in zip(args.sets, split(items, args.num_dev, args.num_eval)):
        write_datadir(Path(args.out_dir) / name,
                      wavs={u: w for u, w, _ in part},
                      texts={u: t for u, _, t in part},
                      spks={u: SPEAKER for u, _, _ in part})
        print(f"{Path(args.out_dir) / name}: {len(part)} utterances", file=sys.stderr)


if __name__ == "__main__":
    main_guard(main)
