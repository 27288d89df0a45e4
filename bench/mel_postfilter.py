"""Is the demo's voice over-smoothed? Post-filters on its decoded log-mels, scored (issue 14).

The synthesis changes less from frame to frame and from bin to bin than the recordings
(README, "Why our voice lagged"). If that smoothness were what DNSMOS's SIG hears, undoing
it before Griffin-Lim should raise SIG. This takes a decoded set's ``denorm`` features
(``<decode_dir>/<set>/denorm/feats.scp``, noise_scale 0 so every draw has the same
features), applies each post-filter, writes ``<out_root>/<variant>/<set>/feats_seed{1..N}``,
and runs the recipe's own vocoding and scoring on it (``glowtts_recipe.vocode``, ``score``),
so each variant gets the same Griffin-Lim, ASR and DNSMOS as the demo. Variants:

* ``none``: the features as decoded (checks that this path reproduces stage 7s);
* ``gv``: global-variance compensation (Toda et al., 2007): each bin's deviation from the
  utterance's mean scaled to the per-bin variance of the training recordings;
* ``scale1.2``: every deviation from the utterance's mean times 1.2;
* ``sharpen_t``, ``sharpen_tf``: unsharp masking (y + 0.5 (y - 3-point mean)) along time,
  or over time and frequency.

Run from the recipe directory (``glowtts_recipe`` is installed with the package)::

    python ../../../bench/mel_postfilter.py --exp_dir exp/<exp> --out_root exp/postfilter dev
"""

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml
from scipy.ndimage import uniform_filter, uniform_filter1d

from glowtts_recipe import score, vocode
from glowtts_recipe.datadir import read_kv


def frame_variance(mels) -> np.ndarray:
    """Per-bin variance over frames, averaged over utterances (the "global variance")."""
    return np.mean([m.var(0) for m in mels], 0)


def postfilters(train_variance: np.ndarray) -> dict:
    def deviation(m, scale):
        mean = m.mean(0)
        return mean + (m - mean) * scale

    def sharpen(m, smoothed):
        return m + 0.5 * (m - smoothed)

    return {
        "none": lambda m: m,
        "gv": lambda m: deviation(m, np.sqrt(train_variance / (m.var(0) + 1e-8))),
        "scale1.2": lambda m: deviation(m, 1.2),
        "sharpen_t": lambda m: sharpen(m, uniform_filter1d(m, 3, 0, mode="nearest")),
        "sharpen_tf": lambda m: sharpen(m, uniform_filter(m, 3, mode="nearest")),
    }


def smoothness(mels) -> str:
    """Mean absolute change of log10 mel between neighbouring frames and bins."""
    dt = np.mean([np.abs(np.diff(m, axis=0)).mean() for m in mels])
    df = np.mean([np.abs(np.diff(m, axis=1)).mean() for m in mels])
    return f"frame-to-frame {dt:.3f}, bin-to-bin {df:.3f}"


def recordings(config: Path, data_dir: Path) -> dict:
    """utt -> log-mel (T, n_mels) of each wav of ``data_dir``, by the model's front end."""
    fbank = score._fbank(yaml.safe_load(config.read_text()))
    mels = {}
    for utt, path in read_kv(data_dir / "wav.scp").items():
        x, _ = sf.read(path, dtype="float32")
        with torch.no_grad():
            mels[utt] = fbank(torch.from_numpy(x)[None])[0][0].numpy()
    return mels


def score_as_decoded(mels: dict, set_dir: Path, config: Path, args) -> None:
    """Score log-mels (utt -> (T, n_mels)) as a decoded set in ``set_dir``: ``args.draws``
    draws of the same features (Griffin-Lim's random phases are what differ) through the
    recipe's own vocoding and scoring."""
    for k in range(1, args.draws + 1):
        d = set_dir / f"feats_seed{k}"
        d.mkdir(parents=True, exist_ok=True)
        for u, m in mels.items():
            np.save(d / f"{u}.npy", m.astype(np.float32))
    iters = f"--griffin_lim_iters={args.griffin_lim_iters}"
    vocode.main([f"--train_config={config}", iters, str(set_dir)])
    score.main(
        [f"--train_config={config}", f"--decode_dir={set_dir.parent}", iters]
        + [f"--data_root={args.data_root}", args.set]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp_dir", type=Path, required=True)
    parser.add_argument(
        "--inference_tag", default="decode_glow_tts_mini_train.loss.ave"
    )
    parser.add_argument("--data_root", type=Path, default=Path("dump/raw"))
    parser.add_argument("--train_set", default="tr_no_dev")
    parser.add_argument("--out_root", type=Path, required=True)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--griffin_lim_iters", type=int, default=32)
    parser.add_argument("--variants", default="none,gv,scale1.2,sharpen_t,sharpen_tf")
    parser.add_argument("set")
    args = parser.parse_args()
    config = args.exp_dir / "config.yaml"
    train = recordings(config, args.data_root / args.train_set).values()
    refs = recordings(config, args.data_root / args.set).values()
    scp = args.exp_dir / args.inference_tag / args.set / "denorm" / "feats.scp"
    decoded = {u: np.load(p) for u, p in read_kv(scp).items()}
    print(f"recordings: {smoothness(refs)}")
    filters = postfilters(frame_variance(train))
    for name in args.variants.split(","):
        out = {u: filters[name](m).astype(np.float32) for u, m in decoded.items()}
        print(f"{name}: {smoothness(out.values())}")
        score_as_decoded(out, args.out_root / name / args.set, config, args)


if __name__ == "__main__":
    main()
