"""Features synthesised elsewhere -> wavs through the decoding vocoder, in stage 7's layout.

compare.sh decodes Coqui's GlowTTS in Coqui's venv (``glowtts_recipe.coqui_glowtts
synthesize``), which writes log10 mel features, ``<set_dir>/feats_seed<k>/<utt>.npy``
(frames, bins). This turns each draw into wavs with the vocoder that our decoding uses
(ESPnet's Griffin-Lim with the model's feature settings, or ``--vocoder_file``), as
``<set_dir>/wav`` (draw 1) and ``<set_dir>/wav_seed<k>``, the layout that
``glowtts_recipe.score`` reads, and writes ``<set_dir>/rtf.json`` when the synthesiser
left its time in ``coqui_time.json`` (the model's time plus the vocoder's, over the audio).

    python -m glowtts_recipe.vocode --train_config exp/tts_x/config.yaml \\
        --griffin_lim_iters 32 exp/compare/coqui_glow_tts/decode/eval1
"""

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from glowtts_recipe.datadir import DataError, atomic_write, main_guard
from glowtts_recipe.score import file_vocoder, griffin_lim_vocoder, write_wav


def vocode_set(set_dir: Path, vocoder, fs: int, n_shift: int) -> dict:
    """Every feats_seed<k> of ``set_dir`` into its wav directory; (seconds, audio) of draw 1."""
    import torch

    draws = sorted(
        (int(d.name[len("feats_seed") :]), d)
        for d in set_dir.glob("feats_seed*")
        if d.name[len("feats_seed") :].isdigit()
    )
    if not draws:
        raise DataError(f"{set_dir}: no feats_seed<k> directories to vocode")
    seconds = audio = 0.0
    for k, feats_dir in draws:
        out = set_dir / ("wav" if k == 1 else f"wav_seed{k}")
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for npy in sorted(feats_dir.glob("*.npy")):
            mel = np.load(npy)
            if mel.ndim != 2:
                raise DataError(f"{npy}: expected (frames, bins), got {mel.shape}")
            start = time.perf_counter()
            with torch.no_grad():
                wav = vocoder(torch.from_numpy(mel).float()).view(-1).numpy()
            if k == 1:
                seconds += time.perf_counter() - start
                audio += mel.shape[0] * n_shift / fs
            write_wav(tmp / f"{npy.stem}.wav", wav, fs)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)  # a draw's wav directory appears complete or not at all
    return dict(vocoder_seconds=round(seconds, 3), audio_seconds=round(audio, 3))


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--train_config", required=True, help="config.yaml with the feature settings"
    )
    parser.add_argument("--griffin_lim_iters", type=int, default=8)
    parser.add_argument("--vocoder_file", default=None)
    parser.add_argument("--vocoder_config", default=None)
    parser.add_argument("set_dirs", nargs="+")
    args = parser.parse_args(cmd)
    import yaml

    with open(args.train_config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    feats = conf.get("feats_extract_conf") or {}
    fs, n_shift = int(feats.get("fs", 22050)), int(feats.get("hop_length", 256))
    if args.vocoder_file:
        vocoder, _ = file_vocoder(conf, args.vocoder_file, args.vocoder_config)
    else:
        vocoder = griffin_lim_vocoder(conf, args.griffin_lim_iters)
    for set_dir in map(Path, args.set_dirs):
        timing = vocode_set(set_dir, vocoder, fs, n_shift)
        model = set_dir / "coqui_time.json"
        if model.is_file() and timing["audio_seconds"]:
            timing["model_seconds"] = json.loads(model.read_text())["model_seconds"]
            total = timing["model_seconds"] + timing["vocoder_seconds"]
            timing["rtf"] = round(total / timing["audio_seconds"], 4)
            timing["note"] = "model (Coqui) and vocoder time over the audio, draw 1"
            atomic_write(set_dir / "rtf.json", json.dumps(timing, indent=2) + "\n")
        print(f"{set_dir}: {json.dumps(timing)}")


if __name__ == "__main__":
    main_guard(main)
