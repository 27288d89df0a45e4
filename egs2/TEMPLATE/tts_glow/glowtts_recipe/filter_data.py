"""Stage 4: drop utterances that training cannot use, and say how many and why.

Removed: audio shorter than ``--min_wav_duration`` or longer than ``--max_wav_duration``;
transcripts with no tokens after cleaning and g2p; and utterances whose frames cannot cover
their tokens. Glow-TTS's alignment needs at least one frame per token: the model sees
``floor(samples / n_shift) + 1`` frames (ESPnet's centred STFT) cut to a multiple of the
decoder's squeeze factor, and ``2N + 1`` tokens for N input tokens when ``add_blank`` is on.
Tokens are counted with the same cleaner and g2p as training; ``add_blank`` and
``squeeze_factor`` are read from the training config.

    python -m glowtts_recipe.filter_data --train_config conf/train.yaml \\
        --token_type phn --g2p espeak_ng_english_us_vits --cleaner tacotron \\
        dump/raw/org/tr_no_dev dump/raw/tr_no_dev [SRC_DIR OUT_DIR ...]
"""

import argparse
import sys
from pathlib import Path

import yaml

from glowtts_recipe.datadir import (
    check_datadir,
    main_guard,
    read_kv,
    read_utt_extras,
    write_datadir,
)


def build_text_frontend(token_type: str, g2p: str, cleaner: str):
    """``text -> tokens`` exactly as ESPnet's training preprocessor does it."""
    from espnet2.text.build_tokenizer import build_tokenizer
    from espnet2.text.cleaner import TextCleaner

    none = (None, "none", "")
    tokenizer = build_tokenizer(token_type, g2p_type=None if g2p in none else g2p)
    clean = TextCleaner(None if cleaner in none else cleaner)
    return lambda text: tokenizer.text2tokens(clean(text))


def model_token_rules(train_config):
    """(add_blank, squeeze_factor) of the model in ``train_config``.

    Values the config leaves out are GlowTTS's own defaults, read from its signature so
    that they cannot drift from the model. Other models (``tts:`` not ``glow_tts``) insert
    no blanks and fold no frames: (False, 1).
    """
    import inspect

    conf = {}
    if train_config:
        with open(train_config, encoding="utf-8") as f:
            conf = yaml.safe_load(f) or {}
    if conf.get("tts", "glow_tts") != "glow_tts":
        return False, 1
    from espnet_glowtts import GlowTTS

    defaults = {k: p.default for k, p in inspect.signature(GlowTTS).parameters.items()}
    tts_conf = conf.get("tts_conf") or {}
    return (
        bool(tts_conf.get("add_blank", defaults["add_blank"])),
        int(tts_conf.get("squeeze_factor", defaults["squeeze_factor"])),
    )


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fs", type=int, default=22050)
    parser.add_argument("--n_shift", type=int, default=256)
    parser.add_argument("--min_wav_duration", type=float, default=0.1)
    parser.add_argument("--max_wav_duration", type=float, default=20.0)
    parser.add_argument("--token_type", default="phn")
    parser.add_argument("--g2p", default="espeak_ng_english_us_vits")
    parser.add_argument("--cleaner", default="tacotron")
    parser.add_argument("--train_config", default=None)
    parser.add_argument("dirs", nargs="+", metavar="SRC_DIR OUT_DIR")
    args = parser.parse_args(cmd)
    if len(args.dirs) % 2:
        parser.error("give pairs of SRC_DIR OUT_DIR")
    add_blank, squeeze = model_token_rules(args.train_config)
    to_tokens = build_text_frontend(args.token_type, args.g2p, args.cleaner)
    for src, out in zip(args.dirs[::2], args.dirs[1::2]):
        filter_dir(Path(src), Path(out), args, to_tokens, add_blank, squeeze)


def filter_dir(
    src: Path, out_dir: Path, args, to_tokens, add_blank: bool, squeeze: int
):
    texts = check_datadir(src)
    num_samples = read_kv(src / "utt2num_samples")

    keep, removed = [], {
        "too short": 0,
        "too long": 0,
        "no tokens": 0,
        "fewer frames than tokens": 0,
    }
    for utt, text in texts.items():
        samples = int(num_samples[utt])
        if samples < args.min_wav_duration * args.fs:
            removed["too short"] += 1
            continue
        if samples > args.max_wav_duration * args.fs:
            removed["too long"] += 1
            continue
        n = len(to_tokens(text))
        if n == 0:
            removed["no tokens"] += 1
            continue
        frames = samples // args.n_shift + 1
        frames -= frames % squeeze
        if frames < (2 * n + 1 if add_blank else n):
            removed["fewer frames than tokens"] += 1
            continue
        keep.append(utt)

    if not keep:
        raise SystemExit(f"ERROR: {src}: every utterance was filtered out ({removed})")
    files = {
        name: read_kv(src / name) for name in ("wav.scp", "utt2spk", "utt2num_samples")
    }
    write_datadir(
        out_dir,
        {u: files["wav.scp"][u] for u in keep},
        {u: texts[u] for u in keep},
        {u: files["utt2spk"][u] for u in keep},
        extra={
            "utt2num_samples": {u: files["utt2num_samples"][u] for u in keep},
            **read_utt_extras(src, keep),
        },
    )
    (out_dir / "feats_type").write_text("raw\n")
    detail = ", ".join(f"{v} {k}" for k, v in removed.items() if v) or "none"
    print(
        f"{out_dir}: kept {len(keep)} of {len(texts)} utterances "
        f"(removed {len(texts) - len(keep)}: {detail})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main_guard(main)
