"""Issue 13: Coqui's GlowTTS beside ours in compare.sh: its features through our vocoder,
its run in the comparison table, and (where Coqui's venv exists) the claim that its mel
features and ours are the same numbers, so that one Griffin-Lim serves both."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from glowtts_recipe import compare_report, coqui_glowtts, vocode
from glowtts_recipe.datadir import DataError

ROOT = Path(__file__).resolve().parents[1]
COQUI_PYTHON = (
    ROOT / "bench" / "results" / "peers" / "coqui-tts-venv" / "bin" / "python"
)
MINI = ROOT / "conf" / "tuning" / "train_glow_tts_mini.yaml"
FS, HOP = 22050, 256


def _espeak_wav(path: Path, text: str = "The north wind and the sun.") -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), text], check=True)
    x, fs = sf.read(path, dtype="float32")
    assert fs == FS
    return x


def _our_log_mel(x: np.ndarray) -> np.ndarray:
    from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

    conf = yaml.safe_load(MINI.read_text())["feats_extract_conf"]
    with torch.no_grad():
        mel, _ = LogMelFbank(**conf)(torch.from_numpy(x)[None])
    return mel[0].numpy()  # (frames, bins), log10


def test_vocode_turns_feature_draws_into_the_scored_layout(tmp_path):
    x = _espeak_wav(tmp_path / "ref.wav")
    mel = _our_log_mel(x)
    set_dir = tmp_path / "decode" / "eval1"
    for k in (1, 2):
        (set_dir / f"feats_seed{k}").mkdir(parents=True)
        np.save(set_dir / f"feats_seed{k}" / "u1.npy", mel)
    (set_dir / "coqui_time.json").write_text(json.dumps(dict(model_seconds=0.5)))
    vocode.main(
        ["--train_config", str(MINI), "--griffin_lim_iters", "16", str(set_dir)]
    )
    wavs = {
        d: sf.read(set_dir / d / "u1.wav", dtype="float32")
        for d in ("wav", "wav_seed2")
    }
    for y, fs in wavs.values():
        assert fs == FS and abs(len(y) - len(mel) * HOP) <= HOP
        # Griffin-Lim gives back the magnitudes it was given (phases differ)
        back = _our_log_mel(y)[: len(mel)]
        loud = mel > mel.max() - 3  # within 30 dB of the peak
        assert np.abs(back - mel[: len(back)])[loud[: len(back)]].mean() < 0.25
    assert not np.allclose(wavs["wav"][0], wavs["wav_seed2"][0])  # two draws
    rtf = json.loads((set_dir / "rtf.json").read_text())
    audio = len(mel) * HOP / FS
    assert rtf["audio_seconds"] == pytest.approx(audio, abs=1e-3)
    expected = (0.5 + rtf["vocoder_seconds"]) / audio
    assert rtf["rtf"] == pytest.approx(expected, rel=1e-3)
    assert not list(set_dir.glob("*.tmp"))


def test_vocode_rejects_bad_features(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no feats_seed"):
        vocode.vocode_set(empty, None, FS, HOP)
    bad = tmp_path / "bad"
    (bad / "feats_seed1").mkdir(parents=True)
    np.save(bad / "feats_seed1" / "u1.npy", np.zeros(80, np.float32))
    with pytest.raises(DataError, match=r"u1.npy: expected \(frames, bins\)"):
        vocode.vocode_set(bad, lambda m: m, FS, HOP)
    assert not (bad / "wav").exists()  # no half-written draw


def test_compare_table_reads_a_coqui_run_with_spreads(tmp_path):
    exp = tmp_path / "coqui_glow_tts"
    (exp / "decode" / "eval1").mkdir(parents=True)
    run = dict(epochs=12, steps=340, train_seconds=600.0, params=780000)
    (exp / "coqui_run.json").write_text(json.dumps(run))
    scores = dict(
        rtf=0.21,
        systems=dict(
            synthesis=dict(mcd=4.5, log_f0_rmse=0.2, cer=30.0, dnsmos_ovrl=1.9),
            reference_vocoded=dict(mcd=3.2, cer=13.1, dnsmos_ovrl=2.75),
        ),
        spread=dict(synthesis=dict(mcd=0.1, cer=2.5, dnsmos_ovrl=0.04)),
    )
    (exp / "decode" / "eval1" / "scores.json").write_text(json.dumps(scores))
    table = compare_report.build_table(
        [("Coqui", str(exp), str(exp / "decode"))], "eval1", "unused.pth"
    )
    row = next(line for line in table.splitlines() if line.startswith("| Coqui"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:5] == ["0.78M", "340 (12 epochs)", "10.0 min", "0.210"]
    assert cells[5:] == ["4.5 ± 0.1", "0.2", "30.0 ± 2.5", "1.9 ± 0.04"]
    assert "DNSMOS OVRL 2.75" in table
    with pytest.raises(DataError, match="scores.json: missing"):
        compare_report.build_table(
            [("Coqui", str(exp), str(tmp_path / "nowhere"))], "eval1", "x.pth"
        )


COQUI_SIDE = """
import json, sys
import numpy as np, soundfile as sf
from pathlib import Path
from TTS.tts.models.glow_tts import GlowTTS
from glowtts_recipe.coqui_glowtts import coqui_config
out = Path(sys.argv[3])
config = coqui_config(Path(sys.argv[1]), out, 22050)
model = GlowTTS(config)
x, _ = sf.read(sys.argv[2], dtype="float32")
mel = model.ap.denormalize(model.ap.melspectrogram(x)) / model.ap.spec_gain
np.save(out / "coqui_mel.npy", mel.T)
enc = model.encoder.encoder
print(json.dumps(dict(
    params=sum(p.numel() for p in model.parameters()),
    hidden=model.encoder.hidden_channels, flows=model.decoder.num_flow_blocks,
    window=enc.attn_layers[0].rel_attn_window_size, layers=len(enc.attn_layers),
    add_blank=model.tokenizer.add_blank, lr=config.lr,
    per_step=not config.scheduler_after_epoch,
    ids=model.tokenizer.text_to_ids("the sun"))))
"""


def test_coqui_gets_the_peak_and_warmup_of_our_schedule():
    mini = yaml.safe_load(MINI.read_text())
    lrs, steps = (
        mini["scheduler_conf"][k] for k in ("warmup_lr_list", "warmup_steps_list")
    )
    peak = max(lrs)
    # the mini config decays to zero at its last step
    assert lrs[-1] == 0.0 and peak > 0
    assert coqui_glowtts._noam_equivalent(MINI, mini) == (peak, steps[lrs.index(peak)])
    # without warmup_steps: ESPnet's default
    noam = dict(scheduler="warmuplr", optim_conf=dict(lr=1e-3))
    assert coqui_glowtts._noam_equivalent(MINI, noam) == (1e-3, 25000)
    with pytest.raises(DataError, match="scheduler 'steplr'"):
        coqui_glowtts._noam_equivalent(MINI, dict(scheduler="steplr"))


@pytest.mark.skipif(
    not COQUI_PYTHON.exists(),
    reason="Coqui's venv is absent (python bench/train_step.py --install-peers)",
)
def test_coqui_gets_our_architecture_and_the_same_mel_numbers(tmp_path):
    x = _espeak_wav(tmp_path / "ref.wav")
    r = subprocess.run(
        [
            str(COQUI_PYTHON),
            "-c",
            COQUI_SIDE,
            str(MINI),
            str(tmp_path / "ref.wav"),
            str(tmp_path),
        ],
        env=dict(
            PYTHONPATH=str(ROOT / "egs2" / "TEMPLATE" / "tts_glow"),
            PATH="/usr/bin:/bin",
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    mini = yaml.safe_load(MINI.read_text())["tts_conf"]
    assert got["hidden"] == mini["hidden_channels"]
    assert got["flows"] == mini["num_flow_blocks"]
    assert got["layers"] == mini["num_encoder_layers"]
    assert got["window"] == mini["window_size"] and got["add_blank"] is True
    assert got["lr"] == yaml.safe_load(MINI.read_text())["optim_conf"]["lr"]
    assert got[
        "per_step"
    ]  # Noam per iteration: per epoch, Coqui's trainer never steps it
    ids = got["ids"]  # blanks around and between the phonemes, as our add_blank
    assert len(ids) % 2 == 1 and len(set(ids[::2])) == 1 and ids[0] not in ids[1::2]
    ours, coqui = _our_log_mel(x), np.load(tmp_path / "coqui_mel.npy")
    assert coqui.shape == ours.shape
    # Coqui's normalisation clips at -100 dB (-4 in log10 with its +20 dB reference);
    # above that floor the two front ends give the same log10 mel
    above = ours > -3.5
    assert above.mean() > 0.3
    assert np.abs(coqui - ours)[above].max() < 0.02
