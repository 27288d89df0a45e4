"""Stage 7 report: unseen tokens, alignment plots and the real-time factor.

For each decoded set directory (``denorm/feats.scp``, ``durations``) and its
data directory (``text``):

* warn, per utterance, about tokens missing from the training token list (ESPnet maps
  them to ``<unk>``, which the model never saw in training);
* write ``images/<utt>.png``: the token-to-frame alignment above the mel spectrogram;
* write ``rtf.json``: the real-time factor measured by ESPnet's inference (time per
  utterance from the frames-per-second it logs in ``--log_dir``, vocoder included) over
  the duration of the audio.

    python -m glowtts_recipe.decode_report --train_config exp/tts/config.yaml \\
        --log_dir exp/tts/decode/log --data_dirs dump/raw/eval1 -- exp/tts/decode/eval1
"""

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import yaml

from glowtts_recipe.datadir import atomic_write, main_guard, read_kv
from glowtts_recipe.filter_data import build_text_frontend

SPEED = re.compile(r"inference speed = ([0-9.]+) frames / sec")
SIZE = re.compile(r"\) INFO: (\S+) \(size:\d+->(\d+)\)")


def load_config(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def frontend(conf: dict):
    return build_text_frontend(
        conf["token_type"], conf.get("g2p") or "none", conf.get("cleaner") or "none"
    )


def check_unseen(conf: dict, data_dirs) -> int:
    """Warn about tokens outside the training token list; return the number of utterances."""
    known = set(conf["token_list"])
    to_tokens, count = frontend(conf), 0
    for data_dir in data_dirs:
        for utt, text in read_kv(Path(data_dir) / "text").items():
            unseen = sorted({t for t in to_tokens(text) if t not in known})
            if unseen:
                count += 1
                print(
                    f"WARNING: {data_dir}/text: {utt}: tokens {unseen} were not seen in "
                    "training; they are decoded as <unk>",
                    file=sys.stderr,
                )
    return count


def measure_rtf(log_dir: Path, keys, fs: int, n_shift: int) -> dict:
    seconds, frames = 0.0, 0
    for log in sorted(Path(log_dir).glob("tts_inference.*.log")):
        speed = None
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if m := SPEED.search(line):
                speed = float(m.group(1))
            elif (m := SIZE.search(line)) and speed and m.group(1) in keys:
                n = int(m.group(2))
                frames, seconds, speed = frames + n, seconds + n / speed, None
    audio = frames * n_shift / fs
    return dict(
        audio_seconds=round(audio, 3),
        synthesis_seconds=round(seconds, 3),
        rtf=round(seconds / audio, 4) if audio else None,
        note="synthesis time per utterance as logged by espnet2.bin.tts_inference "
        "(acoustic model and vocoder), over the duration of the audio",
    )


def plot(utt: str, tokens, durations, mel: np.ndarray, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(durations)
    ends = np.cumsum(durations)
    path = np.zeros((n, int(ends[-1]) if n else 0))
    for i, (s, e) in enumerate(zip(ends - durations, ends)):
        path[i, s:e] = 1
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw=dict(height_ratios=[1, 1])
    )
    ax1.imshow(path, aspect="auto", origin="lower", interpolation="none", cmap="Greys")
    ax1.set_ylabel("token")
    if tokens is not None and len(tokens) == n and n <= 120:
        ax1.set_yticks(range(n))
        ax1.set_yticklabels([t.replace("<space>", "_") for t in tokens], fontsize=5)
    ax1.set_title(f"{utt}: alignment (predicted durations)")
    ax2.imshow(mel.T, aspect="auto", origin="lower", interpolation="none")
    ax2.set_ylabel("mel bin")
    ax2.set_xlabel("frame")
    ax2.set_title("generated mel spectrogram")
    fig.tight_layout()
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(out)


def report(conf: dict, set_dir: Path, log_dir: Path, data_dir=None) -> dict:
    fe = conf.get("feats_extract_conf") or {}
    fs, n_shift = int(fe.get("fs", 22050)), int(fe.get("hop_length", 256))
    texts = read_kv(Path(data_dir) / "text") if data_dir else {}
    to_tokens = frontend(conf) if texts else None
    durations = {
        k: np.array(v.split(), dtype=int)
        for k, v in read_kv(set_dir / "durations").items()
    }
    images = set_dir / "images"
    images.mkdir(exist_ok=True)
    for utt, npy in read_kv(set_dir / "denorm" / "feats.scp").items():
        tokens = to_tokens(texts[utt]) if utt in texts else None
        if (
            tokens is not None
            and utt in durations
            and len(durations[utt]) == len(tokens) + 1
        ):
            durations[utt] = durations[utt][:-1]  # a teacher dump's 0 for <sos/eos>
        plot(
            utt,
            tokens,
            durations.get(utt, np.zeros(0, dtype=int)),
            np.load(npy),
            images / f"{utt}.png",
        )
    rtf = measure_rtf(log_dir, set(durations), fs, n_shift)
    atomic_write(set_dir / "rtf.json", json.dumps(rtf, indent=2) + "\n")
    print(
        f"{set_dir}: {len(durations)} utterances, RTF {rtf['rtf']} "
        f"({rtf['synthesis_seconds']} s for {rtf['audio_seconds']} s of audio), "
        f"plots in {images}",
        file=sys.stderr,
    )
    return rtf


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--train_config", required=True, help="the experiment's config.yaml"
    )
    parser.add_argument("--log_dir", required=True, help="tts_inference.*.log are here")
    parser.add_argument(
        "--data_dirs",
        nargs="*",
        default=[],
        help="data directories of the decoded sets (token labels), in order",
    )
    parser.add_argument("set_dirs", nargs="*")
    args = parser.parse_args(cmd)
    conf = load_config(args.train_config)
    n = check_unseen(conf, args.data_dirs)
    if n:
        print(
            f"WARNING: {n} utterance(s) contain tokens unseen in training "
            "(mapped to <unk>)",
            file=sys.stderr,
        )
    data_dirs = args.data_dirs or [None] * len(args.set_dirs)
    for set_dir, data_dir in zip(args.set_dirs, data_dirs):
        report(conf, Path(set_dir), Path(args.log_dir), data_dir)


if __name__ == "__main__":
    main_guard(main)
