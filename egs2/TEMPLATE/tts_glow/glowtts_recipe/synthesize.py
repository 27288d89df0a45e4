"""Speak sentences with a packed Glow-TTS model (a zip from ``espnet2.bin.pack``).

The zip is unpacked with espnet_model_zoo's ``ModelDownloader`` (as model-zoo users load
it) and run with ESPnet's ``Text2Speech`` and Griffin-Lim. Texts longer than ``--max_chars`` are spoken
sentence by sentence (``espnet_glowtts.long_text``); ``--stream`` appends each sentence's
audio to the wav as soon as it is ready.

    python -m glowtts_recipe.synthesize --model exp/tts/model.zip \\
        --text "Hello there." --out hello.wav
"""

import argparse
import sys
import time
from pathlib import Path

import soundfile as sf

import espnet_glowtts  # noqa: F401  (registers glow_tts)


def load(model_zip, noise_scale: float = 0.333, length_scale: float = 1.0, **kwargs):
    from espnet2.bin.tts_inference import Text2Speech
    from espnet_model_zoo.downloader import ModelDownloader

    files = ModelDownloader().download_and_unpack(str(Path(model_zip).resolve()))
    return Text2Speech(**files, noise_scale=noise_scale, length_scale=length_scale,
                       **kwargs)


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="packed model zip")
    parser.add_argument("--text", action="append", required=True, help="repeatable")
    parser.add_argument("--out", required=True,
                        help="output wav (with several --text: out_1.wav, out_2.wav, ...)")
    parser.add_argument("--noise_scale", type=float, default=0.333)
    parser.add_argument("--length_scale", type=float, default=1.0)
    parser.add_argument("--max_chars", type=int, default=400,
                        help="longer texts are split into sentences")
    parser.add_argument("--stream", action="store_true",
                        help="write each sentence's audio as soon as it is ready")
    args = parser.parse_args(cmd)
    tts = load(args.model, args.noise_scale, args.length_scale, max_chars=args.max_chars)
    out = Path(args.out)
    for i, text in enumerate(args.text, 1):
        path = out if len(args.text) == 1 else out.with_name(f"{out.stem}_{i}{out.suffix}")
        start = time.time()
        if args.stream:
            seconds = stream(tts, text, path)
        else:
            wav = tts(text)["wav"].view(-1).cpu().numpy()
            tmp = path.with_name(f".tmp.{path.name}")
            sf.write(str(tmp), wav, tts.fs, subtype="PCM_16", format="WAV")
            tmp.replace(path)
            seconds = len(wav) / tts.fs
        print(f"{path}: {seconds:.2f} s of speech in {time.time() - start:.2f} s",
              file=sys.stderr)


def stream(tts, text: str, path: Path) -> float:
    """Append each sentence's audio to ``path`` as soon as it is synthesized."""
    from espnet_glowtts.long_text import iter_sentences

    samples = 0
    with sf.SoundFile(str(path), "w", samplerate=tts.fs, channels=1, subtype="PCM_16",
                      format="WAV") as f:
        for part in iter_sentences(tts, text):
            wav = part["wav"].view(-1).cpu().numpy()
            f.write(wav)
            f.flush()
            samples += len(wav)
    return samples / tts.fs


if __name__ == "__main__":
    main()
