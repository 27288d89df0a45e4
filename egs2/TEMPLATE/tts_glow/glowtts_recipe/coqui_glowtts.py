"""Coqui TTS's GlowTTS, trained with its own trainer on the recipe's data (issue 13).

Runs in Coqui's own venv (coqui-tts 0.28; ``python bench/train_step.py --install-peers``
creates it), with this recipe directory on ``PYTHONPATH`` and neither espnet nor
espnet_glowtts importable; ``scripts/compare.sh`` calls it. Two commands:

``train``: Coqui's ``Trainer`` on ``<train_dir>`` (``wav.scp`` + ``text``) with
``<valid_dir>`` as its evaluation set, for a budget of training wall time. The model gets
the architecture and optimiser of our Glow-TTS config (``--glow_tts_config``, mapped
field by field in ``COQUI_FIELDS``) and Coqui's own front end: its espeak-ng phonemizer
(en-us) and its own mel normalisation, on our mel settings (fs, FFT, hop, 80 bins,
fmin/fmax) so that both models' outputs go through one Griffin-Lim. The budget is
checked at the end of each of Coqui's epochs, as compare.sh does for ESPnet's models.
Writes ``<out_dir>/coqui_run.json`` (checkpoint, config, steps, epochs, training
seconds, parameters) last, so its presence means the run finished.

``synthesize``: each text of ``<data_dir>/text`` through ``GlowTTS.inference`` for
``--seeds`` draws, as log10 mel features in our scale, ``<out_dir>/feats_seed<k>/<utt>.npy``
(frames, bins), and the model's time in ``<out_dir>/coqui_time.json``. The recipe's
``glowtts_recipe.vocode`` turns them into wavs with the decoding vocoder.

    PYTHONPATH=egs2/TEMPLATE/tts_glow coqui-venv/bin/python -m glowtts_recipe.coqui_glowtts \\
        train --train_dir dump/raw/tr_no_dev --valid_dir dump/raw/dev \\
        --glow_tts_config exp/tts_x/config.yaml --budget_seconds 1000 --out_dir exp/compare/coqui
"""

import argparse
import json
import time
from pathlib import Path

from glowtts_recipe.datadir import DataError, atomic_write, main_guard, read_kv

# Our tts_conf key -> Coqui GlowTTSConfig field ("encoder_params.x": a key of that dict).
# Coqui's duration predictor has a fixed kernel of 3, and it always adds the blank token
# itself when add_blank is on; its ActNorm data-dependent init stays as Coqui runs it.
COQUI_FIELDS = {
    "hidden_channels": "hidden_channels_enc",
    "filter_channels": "encoder_params.hidden_channels_ffn",
    "num_heads": "encoder_params.num_heads",
    "num_encoder_layers": "encoder_params.num_layers",
    "encoder_kernel_size": "encoder_params.kernel_size",
    "encoder_dropout": "encoder_params.dropout_p",
    # Coqui's default config leaves this out, which turns its relative attention off
    "window_size": "encoder_params.rel_attn_window_size",
    "use_prenet": "use_encoder_prenet",
    "mean_only": "mean_only",
    "duration_filter_channels": "hidden_channels_dp",
    "duration_dropout": "dropout_p_dp",
    "decoder_hidden_channels": "hidden_channels_dec",
    "decoder_kernel_size": "kernel_size_dec",
    "decoder_dilation_rate": "dilation_rate",
    "num_flow_blocks": "num_flow_blocks_dec",
    "num_coupling_layers": "num_block_layers",
    "decoder_dropout": "dropout_p_dec",
    "group_size": "num_splits",
    "squeeze_factor": "num_squeeze",
    "add_blank": "add_blank",
}
UTTS_PER_BATCH = 8  # what our mini config's numel batches hold on the espeak corpus
RUN_FILE = "coqui_run.json"


def read_samples(data_dir: Path) -> list:
    """Coqui's sample dicts from a Kaldi-style directory (wav.scp and text)."""
    wavs, texts = read_kv(data_dir / "wav.scp"), read_kv(data_dir / "text")
    missing = sorted(set(texts) - set(wavs))
    if missing:
        raise DataError(f"{data_dir}/wav.scp: no wav for {missing[:3]}")
    for utt, path in wavs.items():
        if not Path(path).is_file():
            raise DataError(
                f"{data_dir}/wav.scp: {utt}: {path} is not a file (not a pipe)"
            )
    return [
        dict(
            text=texts[u],
            audio_file=wavs[u],
            speaker_name="speaker",
            root_path=str(data_dir),
            language="",
            audio_unique_name=u,
        )
        for u in texts
    ]


def _noam_equivalent(glow_tts_config: Path, ours: dict):
    """Peak learning rate and warmup steps of our schedule, for Coqui's NoamLR.

    warmuplr is Noam itself. A piecewiselinearwarmuplr (the mini config's warmup and linear
    decay to zero at its last step) gives its peak and the step of the peak: Coqui's
    trainer stops on a wall-clock budget, at a step not known in advance, so a schedule
    that ends at a given step has no equivalent there, and Coqui keeps Noam's decay.
    """
    optim, sched = ours.get("optim_conf") or {}, ours.get("scheduler_conf") or {}
    if ours.get("scheduler") == "warmuplr":
        return float(optim.get("lr", 1e-3)), int(sched.get("warmup_steps", 25000))
    if ours.get("scheduler") == "piecewiselinearwarmuplr":
        steps, lrs = sched["warmup_steps_list"], sched["warmup_lr_list"]
        peak = max(range(len(lrs)), key=lambda i: lrs[i])
        return float(lrs[peak]), max(1, int(steps[peak]))
    raise DataError(
        f"{glow_tts_config}: scheduler {ours.get('scheduler')!r}; "
        "expected warmuplr or piecewiselinearwarmuplr"
    )


def coqui_config(glow_tts_config: Path, out_dir: Path, fs: int):
    """GlowTTSConfig with our model's architecture, optimiser and mel settings."""
    import yaml
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.glow_tts_config import GlowTTSConfig

    ours = yaml.safe_load(glow_tts_config.read_text(encoding="utf-8"))
    tts, feats = ours.get("tts_conf") or {}, ours.get("feats_extract_conf") or {}
    optim = ours.get("optim_conf") or {}
    if ours.get("tts") != "glow_tts":
        raise DataError(f"{glow_tts_config}: expected a glow_tts model")
    peak_lr, warmup_steps = _noam_equivalent(glow_tts_config, ours)
    if feats.get("fs", fs) != fs:
        raise DataError(
            f"{glow_tts_config}: features at {feats['fs']} Hz, data at {fs}"
        )
    config = GlowTTSConfig(
        audio=BaseAudioConfig(
            sample_rate=fs,
            fft_size=feats.get("n_fft", 1024),
            win_length=feats.get("win_length") or feats.get("n_fft", 1024),
            hop_length=feats.get("hop_length", 256),
            num_mels=feats.get("n_mels", 80),
            mel_fmin=feats.get("fmin", 0),
            mel_fmax=feats.get("fmax"),
            do_trim_silence=False,  # the same wavs as ours, untrimmed
        ),
        use_phonemes=True,
        phonemizer="espeak",
        phoneme_language="en-us",
        phoneme_cache_path=str(out_dir / "phoneme_cache"),
        text_cleaner="english_cleaners",
        batch_size=UTTS_PER_BATCH,
        eval_batch_size=UTTS_PER_BATCH,
        num_loader_workers=int(ours.get("num_workers", 1)),
        num_eval_loader_workers=0,
        epochs=100000,  # the budget stops it
        optimizer="Adam",
        optimizer_params=dict(
            betas=list(optim.get("betas", [0.9, 0.98])),
            eps=float(optim.get("eps", 1e-9)),
            weight_decay=float(optim.get("weight_decay", 0.0)),
        ),
        lr=peak_lr,
        lr_scheduler="NoamLR",  # the same formula as ESPnet's warmuplr
        lr_scheduler_params=dict(warmup_steps=warmup_steps),
        # Noam is a per-iteration schedule, as ours. Coqui's trainer default (per epoch)
        # never steps it with a single optimiser (coqui-tts-trainer 0.4: epoch-end steps
        # need index 0 among the stepped optimisers, which it records as None), so the lr
        # stays at its first value, lr / warmup_steps: 2e-5 here, 2.5e-7 in Coqui's config.
        scheduler_after_epoch=False,
        grad_clip=float(ours.get("grad_clip", 5.0)),
        test_sentences=[],
        test_delay_epochs=-1,
        print_step=50,
        save_step=10**9,
        save_n_checkpoints=1,
        output_path=str(out_dir),
        run_name="coqui_glow_tts",
    )
    for ours_key, field in COQUI_FIELDS.items():
        if ours_key not in tts:
            continue
        if field.startswith("encoder_params."):
            config.encoder_params[field.split(".", 1)[1]] = tts[ours_key]
        else:
            setattr(config, field, tts[ours_key])
    return config


class BudgetReached(Exception):
    pass


def train(args) -> None:
    import soundfile as sf
    from trainer import Trainer, TrainerArgs
    from TTS.tts.models.glow_tts import GlowTTS

    out_dir = Path(args.out_dir)
    if (out_dir / RUN_FILE).is_file():
        print(f"{out_dir}: already trained ({RUN_FILE}); delete it to redo")
        return
    train_samples = read_samples(Path(args.train_dir))
    eval_samples = read_samples(Path(args.valid_dir))
    fs = sf.info(train_samples[0]["audio_file"]).samplerate
    config = coqui_config(Path(args.glow_tts_config), out_dir, fs)
    model = GlowTTS(config)
    started = {}

    def on_train_epoch_start(trainer):
        started.setdefault("t", time.time())

    def on_epoch_end(trainer):  # after its evaluation and best-model save
        if time.time() - started["t"] >= args.budget_seconds:
            trainer.save_checkpoint()
            raise BudgetReached

    trainer = Trainer(
        TrainerArgs(),
        config,
        config.output_path,
        model=model,
        train_samples=train_samples,
        eval_samples=eval_samples,
        callbacks=dict(
            on_train_epoch_start=on_train_epoch_start, on_epoch_end=on_epoch_end
        ),
    )
    try:
        trainer._fit()  # fit() turns every exception into exit(1)
    except BudgetReached:
        pass
    seconds = time.time() - started["t"]
    run_dir = Path(trainer.output_path)
    checkpoints = sorted(
        run_dir.glob("checkpoint_*.pth"), key=lambda p: int(p.stem.split("_")[1])
    )
    if not checkpoints:
        raise DataError(f"{run_dir}: Coqui's trainer saved no checkpoint")
    run = dict(
        checkpoint=str(checkpoints[-1]),
        config=str(run_dir / "config.json"),
        steps=trainer.total_steps_done,
        epochs=trainer.epochs_done + 1,
        train_seconds=round(seconds, 1),
        params=sum(p.numel() for p in model.parameters()),
        budget_seconds=args.budget_seconds,
        note="Coqui's Trainer: train and evaluation epochs, from the first training epoch",
    )
    atomic_write(out_dir / RUN_FILE, json.dumps(run, indent=2) + "\n")
    print(json.dumps(run))


def synthesize(args) -> None:
    import numpy as np
    import torch
    from TTS.tts.configs.glow_tts_config import GlowTTSConfig
    from TTS.tts.models.glow_tts import GlowTTS

    run_file = Path(args.exp_dir) / RUN_FILE
    if not run_file.is_file():
        raise DataError(f"{run_file}: missing (train Coqui's GlowTTS first)")
    run = json.loads(run_file.read_text())
    config = GlowTTSConfig()
    config.load_json(run["config"])
    model = GlowTTS(config)
    model.load_checkpoint(config, run["checkpoint"], eval=True)
    model.inference_noise_scale = args.noise_scale
    model.length_scale = args.length_scale
    texts = read_kv(Path(args.data_dir) / "text")
    out_dir = Path(args.out_dir)
    seconds, frames = 0.0, 0
    for k in range(1, args.seeds + 1):
        torch.manual_seed(k)
        feats_dir = out_dir / f"feats_seed{k}"
        feats_dir.mkdir(parents=True, exist_ok=True)
        for utt, text in texts.items():
            start = time.perf_counter()
            ids = torch.tensor([model.tokenizer.text_to_ids(text)])
            mel = model.inference(ids, {"x_lengths": torch.tensor([ids.shape[1]])})
            mel = mel["model_outputs"][0].numpy().T  # (bins, frames), Coqui's scale
            # Coqui's dB (spec_gain * log10 of the mel amplitude) -> our log10 mel
            log10_mel = model.ap.denormalize(mel) / model.ap.spec_gain
            if k == 1:
                seconds, frames = (
                    seconds + time.perf_counter() - start,
                    frames + mel.shape[1],
                )
            np.save(feats_dir / f"{utt}.npy", log10_mel.T.astype(np.float32))
    atomic_write(
        out_dir / "coqui_time.json",
        json.dumps(dict(model_seconds=round(seconds, 3), frames=frames)) + "\n",
    )
    print(f"{out_dir}: {len(texts)} utterances x {args.seeds} draws")


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train")
    p.add_argument("--train_dir", required=True)
    p.add_argument("--valid_dir", required=True)
    p.add_argument("--glow_tts_config", required=True, help="our model's config.yaml")
    p.add_argument("--budget_seconds", type=float, required=True)
    p.add_argument("--out_dir", required=True)
    p = sub.add_parser("synthesize")
    p.add_argument("--exp_dir", required=True)
    p.add_argument("--data_dir", required=True)
    p.add_argument("--out_dir", required=True)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--noise_scale", type=float, default=0.333)
    p.add_argument("--length_scale", type=float, default=1.0)
    args = parser.parse_args(cmd)
    train(args) if args.command == "train" else synthesize(args)


if __name__ == "__main__":
    main_guard(main)
