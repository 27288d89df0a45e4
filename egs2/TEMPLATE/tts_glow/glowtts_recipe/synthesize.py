"""Speak sentences with a packed Glow-TTS model (a zip from ``espnet2.bin.pack``).

The zip is unpacked with espnet_model_zoo's ``ModelDownloader`` (as model-zoo users load
it) and run with ESPnet's ``Text2Speech`` and Griffin-Lim.

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
    args = parser.parse_args(cmd)
    tts = load(args.model, args.noise_scale, args.length_scale)
    out = Path(args.out)
    for i, text in enumerate(args.text, 1):
        path = out if len(args.text) == 1 else out.with_name(f"{out.stem}_{i}{out.suffix}")
        start = time.time()
        wav = tts(text)["wav"].view(-1).cpu().numpy()
        sf.write(str(path), wav, tts.fs, subtype="PCM_16")
        print(f"{path}: {len(wav) / tts.fs:.2f} s of speech in {time.time() - start:.2f} s",
              file=sys.stderr)


if __name__ == "__main__":
    main()
