"""Stage 2: a data directory -> ``dump/raw/<set>`` with audio at ``--fs`` Hz mono.

A wav that already is ``--fs`` Hz mono 16-bit PCM is referenced where it is; any other is
read, downmixed, resampled (polyphase) and written under ``<out_dir>/data/``. The output
also has ``utt2num_samples`` (length at ``--fs``) and ``feats_type`` (``raw``).

    python -m glowtts_recipe.format_data --fs 22050 data/dev dump/raw/org/dev \
        [SRC_DIR OUT_DIR ...]
"""

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from glowtts_recipe.datadir import (
    DataError,
    atomic_write,
    check_datadir,
    main_guard,
    read_kv,
    read_utt_extras,
    write_datadir,
)


def convert(src: str, dst: Path, fs: int) -> int:
    """Write ``src`` as ``fs`` Hz mono 16-bit PCM to ``dst``; return its sample count."""
    from scipy.signal import resample_poly

    audio, sr = sf.read(src, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != fs:
        g = math.gcd(sr, fs)
        audio = resample_poly(audio, fs // g, sr // g).astype(np.float32)
    audio = np.clip(audio, -1.0, 1.0)
    tmp = dst.with_name(f".{dst.name}.tmp")
    sf.write(str(tmp), audio, fs, subtype="PCM_16", format="WAV")
    tmp.replace(dst)
    return len(audio)


def format_dir(src_dir, out_dir, fs: int) -> None:
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    texts = check_datadir(src_dir)
    wavs = read_kv(src_dir / "wav.scp")
    new_wavs, num_samples, converted = {}, {}, 0
    for utt, path in wavs.items():
        try:
            info = sf.info(path)
        except Exception as e:
            raise DataError(f"{src_dir / 'wav.scp'}: {utt}: cannot read {path} ({e})")
        if (
            info.samplerate == fs
            and info.channels == 1
            and info.subtype == "PCM_16"
            and info.format == "WAV"
        ):
            new_wavs[utt], num_samples[utt] = path, str(info.frames)
            continue
        dst = out_dir / "data" / f"{utt}.wav"
        dst.parent.mkdir(parents=True, exist_ok=True)
        num_samples[utt] = str(convert(path, dst, fs))
        new_wavs[utt] = str(dst)
        converted += 1
    if converted:
        print(
            f"NOTICE: {src_dir}: converted {converted} of {len(wavs)} wavs to {fs} Hz mono "
            f"16-bit under {out_dir / 'data'}",
            file=sys.stderr,
        )
    write_datadir(
        out_dir,
        new_wavs,
        texts,
        read_kv(src_dir / "utt2spk"),
        extra={"utt2num_samples": num_samples, **read_utt_extras(src_dir, new_wavs)},
    )
    atomic_write(out_dir / "feats_type", "raw\n")
    print(f"{out_dir}: {len(new_wavs)} utterances", file=sys.stderr)


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fs", type=int, default=22050)
    parser.add_argument("dirs", nargs="+", metavar="SRC_DIR OUT_DIR")
    args = parser.parse_args(cmd)
    if len(args.dirs) % 2:
        parser.error("give pairs of SRC_DIR OUT_DIR")
    for src, out in zip(args.dirs[::2], args.dirs[1::2]):
        format_dir(src, out, args.fs)


if __name__ == "__main__":
    main_guard(main)
