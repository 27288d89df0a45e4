"""Do the demo's scorers prefer slower speech? Recordings stretched in time, scored (issue 14).

Decoding the demo model at ``length_scale`` 1.1 raises its DNSMOS and lowers its CER on dev
(bench/RESULTS.md, section 7). This is the control: the recordings' own log-mels, stretched
along time by each factor (linear interpolation per bin), written as decoded features
(``<out_root>/r<factor>/<set>/feats_seed{1..N}``) and put through the recipe's own
Griffin-Lim and scoring (``mel_postfilter.score_as_decoded``). What the recordings gain
from a stretch is the scorers' taste for slow speech, not the model's.

Run from the recipe directory (``glowtts_recipe`` is installed with the package)::

    python ../../../bench/stretched_recordings.py --exp_dir exp/<exp> \
        --out_root exp/stretched --factors 1.0,1.2,1.4 dev
"""

import argparse
from pathlib import Path

import numpy as np
from mel_postfilter import recordings, score_as_decoded  # bench/, beside this file


def stretch(mel: np.ndarray, factor: float) -> np.ndarray:
    """(T, n_mels) -> (round(T * factor), n_mels), linearly interpolated along time."""
    frames = mel.shape[0]
    t = np.linspace(0, frames - 1, int(round(frames * factor)))
    return np.stack([np.interp(t, np.arange(frames), b) for b in mel.T], 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp_dir", type=Path, required=True, help="for its config")
    parser.add_argument("--data_root", type=Path, default=Path("dump/raw"))
    parser.add_argument("--out_root", type=Path, required=True)
    parser.add_argument("--factors", default="1.0,1.2,1.4")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--griffin_lim_iters", type=int, default=32)
    parser.add_argument("set")
    args = parser.parse_args()
    config = args.exp_dir / "config.yaml"
    mels = recordings(config, args.data_root / args.set)
    for factor in (float(f) for f in args.factors.split(",")):
        stretched = {u: stretch(m, factor) for u, m in mels.items()}
        score_as_decoded(
            stretched, args.out_root / f"r{factor}" / args.set, config, args
        )


if __name__ == "__main__":
    main()
