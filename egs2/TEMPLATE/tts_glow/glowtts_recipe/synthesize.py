"""Speak sentences with a packed Glow-TTS model (a zip from ``espnet2.bin.pack``).

The zip is unpacked with espnet_model_zoo's ``ModelDownloader`` (as model-zoo users load
it) and run with ESPnet's ``Text2Speech`` and Griffin-Lim. Texts longer than ``--max_chars`` are spoken
sentence by sentence (``espnet_glowtts.long_text``); ``--stream`` appends each sentence's
audio to the wav as soon as it is ready.

    python -m glowtts_recipe.synthesize --model exp/tts/model.zip \\
        --text "Hello there." --out hello.wav

A multi-speaker model speaks with ``--sid`` (ESPnet's ``spk2sid`` numbering: 0 is
``<unk>``, so the first speaker is 1, the default), ``--lid`` likewise, and an x-vector model
with the first (or ``--speaker``'s) embedding of a ``spk_xvector.scp``.
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
    return Text2Speech(
        **files, noise_scale=noise_scale, length_scale=length_scale, **kwargs
    )


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="packed model zip")
    parser.add_argument("--text", action="append", required=True, help="repeatable")
    parser.add_argument(
        "--out",
        required=True,
        help="output wav (with several --text: out_1.wav, out_2.wav, ...)",
    )
    parser.add_argument("--noise_scale", type=float, default=0.333)
    parser.add_argument("--length_scale", type=float, default=1.0)
    parser.add_argument(
        "--max_chars",
        type=int,
        default=400,
        help="longer texts are split into sentences",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="write each sentence's audio as soon as it is ready",
    )
    parser.add_argument(
        "--sid",
        type=int,
        default=1,
        help="speaker id of a multi-speaker model (spk2sid; 1: the first)",
    )
    parser.add_argument(
        "--lid",
        type=int,
        default=1,
        help="language id of a multi-language model (lang2lid)",
    )
    parser.add_argument(
        "--spk_xvector",
        default=None,
        help="spk_xvector.scp of an x-vector model (its first speaker, or "
        "--speaker)",
    )
    parser.add_argument("--speaker", default=None, help="key in --spk_xvector")
    args = parser.parse_args(cmd)
    tts = load(
        args.model, args.noise_scale, args.length_scale, max_chars=args.max_chars
    )
    speaker = speaker_inputs(tts, args)
    out = Path(args.out)
    for i, text in enumerate(args.text, 1):
        path = (
            out if len(args.text) == 1 else out.with_name(f"{out.stem}_{i}{out.suffix}")
        )
        start = time.time()
        if args.stream:
            seconds = stream(tts, text, path, **speaker)
        else:
            wav = tts(text, **speaker)["wav"].view(-1).cpu().numpy()
            tmp = path.with_name(f".tmp.{path.name}")
            sf.write(str(tmp), wav, tts.fs, subtype="PCM_16", format="WAV")
            tmp.replace(path)
            seconds = len(wav) / tts.fs
        print(
            f"{path}: {seconds:.2f} s of speech in {time.time() - start:.2f} s",
            file=sys.stderr,
        )


def speaker_inputs(tts, args) -> dict:
    """The ``sids``/``lids``/``spembs`` that the loaded model needs, from the options."""
    import numpy as np

    inputs = {}
    if tts.tts.spks is not None and tts.tts.spks > 1:
        inputs["sids"] = np.array([args.sid])
    if tts.tts.langs is not None and tts.tts.langs > 1:
        inputs["lids"] = np.array([args.lid])
    if tts.tts.spk_embed_dim is not None:
        if args.spk_xvector is None:
            sys.exit(
                f"ERROR: {args.model} needs a speaker embedding: give --spk_xvector"
            )
        import kaldiio

        xvectors = kaldiio.load_scp(args.spk_xvector)
        key = args.speaker or next(iter(xvectors.keys()))
        if key not in xvectors:
            sys.exit(f"ERROR: --speaker {key} is not in {args.spk_xvector}")
        inputs["spembs"] = np.asarray(xvectors[key], dtype=np.float32)
    return inputs


def stream(tts, text: str, path: Path, **speaker) -> float:
    """Append each sentence's audio to ``path`` as soon as it is synthesized."""
    from espnet_glowtts.long_text import iter_sentences

    samples = 0
    with sf.SoundFile(
        str(path), "w", samplerate=tts.fs, channels=1, subtype="PCM_16", format="WAV"
    ) as f:
        for part in iter_sentences(tts, text, **speaker):
            wav = part["wav"].view(-1).cpu().numpy()
            f.write(wav)
            f.flush()
            samples += len(wav)
    return samples / tts.fs


if __name__ == "__main__":
    main()
