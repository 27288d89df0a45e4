"""Stage 1: an LJSpeech-layout corpus -> Kaldi-style data directories, checked line by line.

The corpus has ``metadata.csv`` (``id|text|normalized text``) and ``wavs/<id>.wav``. Every
line is checked: three fields, a non-empty normalized transcript, a readable wav. A wav at
another sample rate (or with several channels) is accepted with a notice: stage 2
resamples it. All problems are listed with their file and line, then the stage fails.

Several speakers: a 4th field names the utterance's speaker (``id|text|normalized
text|speaker``) and a 5th its language (``...|speaker|language``, written to
``utt2lang``). Without a 4th field the corpus is one speaker, ``LJ`` (LJSpeech);
``--require_speakers`` (the recipe's ``--use_sid true``) makes a line without a speaker an
error.

The split is LJSpeech's upstream one: the last ``num_dev + num_eval`` lines are held out,
the first ``num_dev`` of those make ``dev`` and the rest ``eval1``; the others are
``tr_no_dev``. With several speakers the held-out utterances are taken from the end of
each speaker's utterances in turn (``eval1`` first, then ``dev``), so both are balanced
over speakers and every speaker keeps training data.

    python -m glowtts_recipe.prepare_data --corpus_dir downloads/LJSpeech-1.1 --out_dir data
"""

import argparse
import sys
from pathlib import Path

import soundfile as sf

from glowtts_recipe.datadir import DataError, main_guard, write_datadir

SPEAKER = "LJ"
MAX_LISTED = 20


def read_corpus(corpus_dir, fs: int, require_speakers: bool = False):
    """Check ``metadata.csv`` and its wavs; return ``[(utt, wav_path, text, spk, lang)]``.

    ``spk`` is ``SPEAKER`` and ``lang`` None when the corpus has no such field.
    """
    corpus_dir = Path(corpus_dir).resolve()
    if any(c.isspace() for c in str(corpus_dir)):
        raise DataError(
            f"{corpus_dir}: the corpus path may not contain spaces (wav.scp "
            "separates fields by spaces); move or link it elsewhere"
        )
    meta = corpus_dir / "metadata.csv"
    if not meta.is_file():
        raise DataError(
            f"{meta}: not found (is {corpus_dir} an LJSpeech-layout corpus?)"
        )
    items, errors, notices, seen = [], [], [], {}
    with open(meta, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            where = f"{meta}:{lineno}"
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("|")
            if len(fields) < 3 or not fields[0].strip():
                errors.append(
                    f"{where}: expected 3 fields 'id|text|normalized text', got "
                    f"{len(fields)} in {line[:60]!r}"
                )
                continue
            utt, text = fields[0].strip(), " ".join(fields[2].split())
            spk = fields[3].strip() if len(fields) > 3 else ""
            lang = fields[4].strip() if len(fields) > 4 else ""
            if not spk and require_speakers:
                raise DataError(
                    f"{where}: no speaker for {utt}: --use_sid needs a 4th "
                    "field 'id|text|normalized text|speaker' on every line"
                )
            if any(c.isspace() for c in spk + lang):
                errors.append(
                    f"{where}: speaker {spk!r} or language {lang!r} contains " "spaces"
                )
                continue
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
                notices.append(
                    f"{where}: {wav.name} is {info.samplerate} Hz with "
                    f"{info.channels} channel(s); stage 2 converts it to "
                    f"{fs} Hz mono"
                )
            items.append((utt, str(wav), text, spk, lang))
    for n in notices[:MAX_LISTED]:
        print(f"NOTICE: {n}", file=sys.stderr)
    if len(notices) > MAX_LISTED:
        print(
            f"NOTICE: ... {len(notices) - MAX_LISTED} more to convert", file=sys.stderr
        )
    if errors:
        more = (
            f"\n  ... and {len(errors) - MAX_LISTED} more"
            if len(errors) > MAX_LISTED
            else ""
        )
        raise DataError(
            f"{len(errors)} problem(s) in the corpus:\n  "
            + "\n  ".join(errors[:MAX_LISTED])
            + more
        )
    if not items:
        raise DataError(f"{meta}: no utterances")
    for col, name in ((3, "speaker"), (4, "language")):
        given = [bool(it[col]) for it in items]
        if any(given) and not all(given):
            utt = items[given.index(False)][0]
            raise DataError(
                f"{meta}: {utt} has no {name} field but other lines have one"
            )
    return [(u, w, t, s or SPEAKER, lang or None) for u, w, t, s, lang in items]


def split(items, num_dev: int, num_eval: int):
    """LJSpeech's split: the last ``num_dev + num_eval`` items -> dev, eval; the rest train."""
    held = num_dev + num_eval
    if num_dev < 1 or num_eval < 1 or len(items) <= held:
        raise DataError(
            f"cannot split {len(items)} utterances into dev={num_dev}, "
            f"eval={num_eval} and a non-empty training set"
        )
    speakers = list(dict.fromkeys(it[3] for it in items))
    if len(speakers) <= 1:
        return items[:-held], items[-held:-num_eval], items[-num_eval:]
    # Round-robin over speakers from the end of each one's utterances, keeping at least one
    # training utterance per speaker: eval1 first, then dev, each balanced.
    rest = {s: [i for i, it in enumerate(items) if it[3] == s] for s in speakers}
    picked = []
    while len(picked) < held and any(len(r) > 1 for r in rest.values()):
        for s in speakers:
            if len(picked) < held and len(rest[s]) > 1:
                picked.append(rest[s].pop())
    if len(picked) < held:
        raise DataError(
            f"cannot hold out dev={num_dev}, eval={num_eval} from "
            f"{len(items)} utterances of {len(speakers)} speakers and keep "
            "training data for every speaker"
        )
    ev, dv = set(picked[:num_eval]), set(picked[num_eval:])
    return (
        [it for i, it in enumerate(items) if i not in ev and i not in dv],
        [it for i, it in enumerate(items) if i in dv],
        [it for i, it in enumerate(items) if i in ev],
    )


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus_dir", required=True)
    parser.add_argument("--out_dir", default="data")
    parser.add_argument("--fs", type=int, default=22050)
    parser.add_argument("--num_dev", type=int, default=250)
    parser.add_argument("--num_eval", type=int, default=250)
    parser.add_argument(
        "--sets",
        nargs=3,
        default=["tr_no_dev", "dev", "eval1"],
        metavar=("TRAIN", "DEV", "EVAL"),
    )
    parser.add_argument(
        "--require_speakers",
        action="store_true",
        help="every metadata.csv line must name its speaker (4th field)",
    )
    args = parser.parse_args(cmd)

    items = read_corpus(args.corpus_dir, args.fs, args.require_speakers)
    for name, part in zip(args.sets, split(items, args.num_dev, args.num_eval)):
        langs = {u: lang for u, _, _, _, lang in part if lang}
        write_datadir(
            Path(args.out_dir) / name,
            wavs={u: w for u, w, _, _, _ in part},
            texts={u: t for u, _, t, _, _ in part},
            spks={u: s for u, _, _, s, _ in part},
            extra={"utt2lang": langs} if langs else None,
        )
        print(f"{Path(args.out_dir) / name}: {len(part)} utterances", file=sys.stderr)


if __name__ == "__main__":
    main_guard(main)
