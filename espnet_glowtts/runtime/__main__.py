"""Speak text with an exported Glow-TTS model (no torch, no espnet).

    python -m espnet_glowtts.runtime --model_dir exported --text "Hello." --out hello.wav
    python -m espnet_glowtts.runtime --model_dir exported --text_file book.txt \\
        --out book.wav --stream

Long texts are split into sentences; with --stream each sentence's audio is appended to
--out (and flushed) as soon as it is synthesized; otherwise --out appears when complete.
"""

import argparse
import sys
import time
from pathlib import Path

import soundfile as sf

from espnet_glowtts.runtime.synthesizer import Synthesizer


def main(cmd=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model_dir", required=True, help="export_onnx output directory"
    )
    text = parser.add_mutually_exclusive_group(required=True)
    text.add_argument("--text")
    text.add_argument("--text_file", help="UTF-8 text file ('-' for stdin)")
    parser.add_argument("--out", required=True, help="output wav")
    parser.add_argument(
        "--stream",
        action="store_true",
        help="write each sentence's audio as soon as it is ready",
    )
    parser.add_argument(
        "--noise_scale",
        type=float,
        default=None,
        help="prior temperature (default: the model's)",
    )
    parser.add_argument(
        "--length_scale", type=float, default=None, help="> 1 is slower"
    )
    parser.add_argument("--sid", type=int, default=None, help="speaker id")
    parser.add_argument("--lid", type=int, default=None, help="language id")
    parser.add_argument(
        "--max_chars",
        type=int,
        default=400,
        help="longest piece of text synthesized at once",
    )
    parser.add_argument("--num_threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quantized", action="store_true", help="use the int8 graphs")
    args = parser.parse_args(cmd)
    try:
        if args.text is not None:
            text = args.text
        elif args.text_file == "-":
            text = sys.stdin.read()
        else:
            text = Path(args.text_file).read_text(encoding="utf-8")
        tts = Synthesizer(
            args.model_dir,
            num_threads=args.num_threads,
            seed=args.seed,
            max_chars=args.max_chars,
            quantized=args.quantized,
        )
        if tts.vocoder is None:
            raise ValueError(f"{args.model_dir} has no vocoder: cannot write a wav")
        options = dict(
            noise_scale=args.noise_scale,
            length_scale=args.length_scale,
            sids=args.sid,
            lids=args.lid,
        )
        write(tts, text, Path(args.out), args.stream, options)
    except (ValueError, OSError) as e:
        sys.exit(f"error: {e}")


def write(tts: Synthesizer, text: str, out: Path, stream: bool, options: dict) -> None:
    """Write the speech of ``text`` to ``out`` (appended per sentence with ``stream``)."""
    start = time.time()
    path = out if stream else out.with_name(f".tmp.{out.name}")
    samples = 0
    pieces = tts.stream(text, **options)
    first = next(pieces)  # errors on empty/unspeakable text before any file is created
    with sf.SoundFile(
        str(path), "w", samplerate=tts.fs, channels=1, subtype="PCM_16", format="WAV"
    ) as f:
        for part in _chain(first, pieces):
            f.write(part["wav"])
            samples += len(part["wav"])
            if stream:
                f.flush()
                print(
                    f"{out}: +{len(part['wav']) / tts.fs:.2f} s "
                    f"({time.time() - start:.2f} s elapsed)",
                    file=sys.stderr,
                )
    if not stream:
        path.replace(out)
    seconds = samples / tts.fs
    elapsed = time.time() - start
    print(
        f"{out}: {seconds:.2f} s of speech in {elapsed:.2f} s "
        f"(RTF {elapsed / max(seconds, 1e-9):.3f})",
        file=sys.stderr,
    )


def _chain(first, rest):
    yield first
    yield from rest


if __name__ == "__main__":
    main()
