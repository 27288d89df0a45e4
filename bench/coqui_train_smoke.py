"""Does Coqui TTS's own trainer run here? A few GlowTTS steps on synthetic wavs (issue 13).

Run with Coqui's venv (``python bench/train_step.py --install-peers`` creates it):

    bench/results/peers/coqui-tts-venv/bin/python bench/coqui_train_smoke.py [--epochs 8]

It writes 4 short LJSpeech-format wavs (sine + noise) and a metadata.csv to a temporary
directory and calls ``Trainer.fit()`` with ``GlowTTSConfig`` (characters, no phonemizer,
batch 2). Coqui's first ``data_dep_init_steps`` (10) steps only initialise ActNorm, so
8 epochs of 2 steps give 6 real optimisation steps. coqui-tts 0.28's API as used here:
``load_tts_samples(config, ...)`` takes the config (not a dataset list) and
``GlowTTS.init_from_config(config)`` builds the audio processor and tokenizer.
"""

import argparse
import os
import tempfile

import numpy as np
import soundfile as sf
from trainer import Trainer, TrainerArgs
from TTS.tts.configs.glow_tts_config import GlowTTSConfig
from TTS.tts.configs.shared_configs import BaseDatasetConfig
from TTS.tts.datasets import load_tts_samples
from TTS.tts.models.glow_tts import GlowTTS

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "printing in the only sense with which we are concerned",
    "differs from most if not from all the arts",
    "and crafts represented in the exhibition",
]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=8)
    args = p.parse_args()
    root = tempfile.mkdtemp(prefix="coqui_smoke_")
    os.makedirs(os.path.join(root, "wavs"))
    rng = np.random.default_rng(0)
    rows = []
    for i, text in enumerate(TEXTS):
        n = int(22050 * (1.0 + 0.005 * len(text)))
        x = 0.1 * np.sin(
            2 * np.pi * 220 * np.arange(n) / 22050
        ) + 0.01 * rng.standard_normal(n)
        sf.write(os.path.join(root, "wavs", f"utt{i}.wav"), x.astype(np.float32), 22050)
        rows.append(f"utt{i}|{text}|{text}")
    with open(os.path.join(root, "metadata.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    dataset = BaseDatasetConfig(
        formatter="ljspeech", meta_file_train="metadata.csv", path=root
    )
    config = GlowTTSConfig(
        batch_size=2,
        eval_batch_size=2,
        num_loader_workers=0,
        num_eval_loader_workers=0,
        run_eval=False,
        test_delay_epochs=-1,
        epochs=args.epochs,
        use_phonemes=False,
        text_cleaner="english_cleaners",
        print_step=1,
        datasets=[dataset],
        eval_split_size=0.25,
        test_sentences=[],
        output_path=os.path.join(root, "out"),
    )
    train, evaluation = load_tts_samples(
        config, eval_split=True, eval_split_size=config.eval_split_size
    )
    model = GlowTTS.init_from_config(config)
    Trainer(
        TrainerArgs(),
        config,
        config.output_path,
        model=model,
        train_samples=train,
        eval_samples=evaluation,
    ).fit()
    print(f"Coqui's trainer ran {args.epochs} epochs; logs in {config.output_path}")


if __name__ == "__main__":
    main()
