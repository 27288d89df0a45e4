"""How far a pitch tracker moves a voice's F0 when the recordings go through the model's
features and Griffin-Lim (the scoring stage's ceiling), per speaker.

The per-speaker F0 goal of the multi-speaker scoring compares synthesis (through
Griffin-Lim) with recordings; this bench measures what the vocoder and the tracker do to
the recordings themselves, for pyworld DIO + StoneMask (what ``speaker_scores`` uses),
pyworld Harvest and librosa's pYIN, with the mean and the median of the voiced frames, and
for several mel ``fmin`` values. It reads a Kaldi-style set (``wav.scp``, ``utt2spk``).

    python bench/vocoded_pitch.py --data_dir egs2/ljspeech/tts_glow/dump/raw/eval1 \\
        --fmin 80 0 40
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "egs2/TEMPLATE/tts_glow"))
from glowtts_recipe import score, speaker_scores  # noqa: E402
from glowtts_recipe.datadir import read_kv  # noqa: E402

TRACKERS = ("dio", "harvest", "pyin")


def voiced_f0(x: np.ndarray, fs: int, hop: int, tracker: str) -> np.ndarray:
    """F0 in Hz of the frames the tracker calls voiced."""
    import librosa
    import pyworld

    if tracker == "pyin":
        f0, voiced, _ = librosa.pyin(
            x, fmin=60, fmax=600, sr=fs, frame_length=4 * hop, hop_length=hop
        )
        return f0[voiced]
    if tracker == "dio":  # what the scoring uses
        return speaker_scores.voiced_f0(x, fs, hop)
    f0, _ = pyworld.harvest(x.astype(np.float64), fs, frame_period=1000.0 * hop / fs)
    return f0[f0 > 0]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--fs", type=int, default=22050)
    parser.add_argument("--n_fft", type=int, default=1024)
    parser.add_argument("--hop", type=int, default=256)
    parser.add_argument("--fmax", type=int, default=7600)
    parser.add_argument("--fmin", type=int, nargs="+", default=[80])
    parser.add_argument("--griffin_lim_iters", type=int, default=32)
    parser.add_argument("--trackers", nargs="+", choices=TRACKERS, default=TRACKERS)
    args = parser.parse_args()
    for name in ("wav.scp", "utt2spk"):
        if not (args.data_dir / name).is_file():
            raise SystemExit(f"{args.data_dir / name}: missing (a Kaldi-style set)")
    wavs, utt2spk = read_kv(args.data_dir / "wav.scp"), read_kv(
        args.data_dir / "utt2spk"
    )
    audio = {u: score.read_wav(p, args.fs) for u, p in wavs.items()}
    speakers = sorted(set(utt2spk.values()))

    def frames(src, tracker):  # speaker -> voiced-frame F0 of its utterances
        return {
            spk: np.concatenate(
                [
                    voiced_f0(x, args.fs, args.hop, tracker)
                    for u, x in src.items()
                    if utt2spk[u] == spk
                ]
            )
            for spk in speakers
        }

    recorded = {t: frames(audio, t) for t in args.trackers}  # the same for every fmin
    print(
        f"{args.data_dir}: {len(wavs)} utterances; change of each voice's F0 "
        "(recordings -> features -> Griffin-Lim), mean / median of voiced frames"
    )
    print("| fmin | tracker | speaker | recordings (Hz) | vocoded (Hz) | change |")
    print("|---|---|---|---|---|---|")
    for fmin in args.fmin:
        feats = dict(
            fs=args.fs,
            n_fft=args.n_fft,
            hop_length=args.hop,
            n_mels=80,
            fmin=fmin,
            fmax=args.fmax,
        )
        through = score.griffin_lim_resynthesis(
            dict(feats_extract="fbank", feats_extract_conf=feats),
            args.griffin_lim_iters,
        )
        vocoded = {u: through(x) for u, x in audio.items()}
        for tracker in args.trackers:
            for spk, voc in frames(vocoded, tracker).items():
                rec = recorded[tracker][spk]
                if not len(rec) or not len(voc):
                    print(f"| {fmin:g} | {tracker} | {spk} | no voiced frames | | |")
                    continue
                stats = [(f(rec), f(voc)) for f in (np.mean, np.median)]
                print(
                    f"| {fmin:g} | {tracker} | {spk} | "
                    + " / ".join(f"{r:.1f}" for r, _ in stats)
                    + " | "
                    + " / ".join(f"{v:.1f}" for _, v in stats)
                    + " | "
                    + " / ".join(f"{100 * (v / r - 1):+.1f}%" for r, v in stats)
                    + " |"
                )


if __name__ == "__main__":
    main()
