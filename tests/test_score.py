"""Stage 9 scoring: DNSMOS, mean ± spread over decoding draws, the ceiling's vocoder."""

import json
import subprocess

import numpy as np
import pytest
import soundfile as sf
import yaml

from glowtts_recipe import score

FS, HOP = 22050, 256
FEATS = dict(fs=FS, n_fft=1024, hop_length=HOP, n_mels=80, fmin=80, fmax=7600)
TEXTS = {"u1": "The north wind and the sun.", "u2": "A short test sentence."}


def _espeak(path, text, voice="en-us"):
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
    x, fs = sf.read(path, dtype="float32")
    assert fs == FS
    return x


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    """References (espeak-ng) and two fake decoding draws: the references plus noise."""
    root = tmp_path_factory.mktemp("score")
    data, set_dir = root / "data/eval1", root / "decode/eval1"
    for d in (data, set_dir / "wav", set_dir / "wav_seed2"):
        d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for utt, text in TEXTS.items():
        ref = _espeak(data / f"{utt}.wav", text)
        for draw, level in (("wav", 0.002), ("wav_seed2", 0.02)):
            noisy = ref + level * rng.standard_normal(len(ref)).astype(np.float32)
            sf.write(set_dir / draw / f"{utt}.wav", noisy, FS, subtype="PCM_16")
    (data / "text").write_text("".join(f"{u} {t}\n" for u, t in TEXTS.items()))
    (data / "wav.scp").write_text("".join(f"{u} {data / u}.wav\n" for u in TEXTS))
    config = root / "config.yaml"
    config.write_text(
        yaml.safe_dump(dict(feats_extract="fbank", feats_extract_conf=FEATS))
    )
    return dict(root=root, data=data, set_dir=set_dir, config=config)


def _score(decoded, *extra):
    score.main(
        [
            "--train_config",
            str(decoded["config"]),
            "--decode_dir",
            str(decoded["root"] / "decode"),
            "--data_root",
            str(decoded["root"] / "data"),
            "--asr",
            "none",
            *extra,
            "eval1",
        ]
    )
    set_dir = decoded["set_dir"]
    return (
        json.loads((set_dir / "scores.json").read_text()),
        (set_dir / "scores.md").read_text(),
    )


def test_dnsmos_of_an_espeak_wav_is_finite_and_in_range(tmp_path):
    dnsmos, name = score.load_dnsmos()
    assert dnsmos is not None, name
    x = _espeak(
        tmp_path / "a.wav", "Printing, in the only sense with which we are concerned."
    )
    clean = dnsmos(x, FS)
    assert set(clean) == {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"}
    assert all(np.isfinite(v) and 1.0 <= v <= 5.0 for v in clean.values()), clean
    # Loud white noise over the speech lowers the background score.
    noisy = x + 0.3 * np.random.default_rng(0).standard_normal(len(x)).astype(
        np.float32
    )
    assert dnsmos(noisy, FS)["dnsmos_bak"] < clean["dnsmos_bak"] - 0.5
    assert dnsmos(np.zeros(FS, dtype=np.float32), FS) is None  # silence: undefined


def test_dnsmos_without_p808_gives_speechmos_numbers(tmp_path):
    import speechmos.dnsmos
    from scipy.signal import resample_poly

    dnsmos, _ = score.load_dnsmos()
    short = _espeak(tmp_path / "a.wav", "The north wind and the sun.")
    long = np.tile(short, 6)  # past one 9.01 s window: several hops
    for x in (short, long):
        y = resample_poly(x.astype(np.float64), 16000, FS)
        y = (y / np.max(np.abs(y))).astype(np.float32)
        expected = speechmos.dnsmos.run(y, 16000, return_df=False)
        got = dnsmos(x, FS)
        for k in ("sig", "bak", "ovrl"):
            assert got[f"dnsmos_{k}"] == round(float(expected[f"{k}_mos"]), 3)


def test_synthesis_is_the_mean_and_spread_over_draws(decoded):
    r, md = _score(decoded, "--griffin_lim_iters", "4")
    assert r["draws"] == 2 and [p["dir"] for p in r["per_draw"]] == ["wav", "wav_seed2"]
    assert r["vocoder"] == "Griffin-Lim (4 iters)"
    for i, draw in enumerate(r["per_draw"]):
        per_utt = [r["per_utterance"][u]["synthesis"][i]["mcd"] for u in TEXTS]
        assert draw["mcd"] == pytest.approx(np.mean(per_utt), abs=1e-3)
    for metric in ("mcd", "dnsmos_ovrl"):
        values = [p[metric] for p in r["per_draw"]]
        assert values[0] != values[1]  # the draws differ, so the spread is real
        assert r["systems"]["synthesis"][metric] == pytest.approx(
            np.mean(values), abs=1e-3
        )
        assert r["spread"]["synthesis"][metric] == pytest.approx(
            np.std(values, ddof=1), abs=1e-3
        )
    assert r["per_draw"][0]["mcd"] < r["per_draw"][1]["mcd"]  # more noise, larger MCD
    assert "mean ± std over 2 decoding draws (n = 2" in md and "2 decoding draws;" in md
    mcd, sd = r["systems"]["synthesis"]["mcd"], r["spread"]["synthesis"]["mcd"]
    assert f"| synthesis (Glow-TTS) | {mcd} ± {sd} |" in md
    assert "reference -> features -> Griffin-Lim (4 iters)" in md
    # Every system's table names it (--compare scores Tacotron2 and Coqui here too).
    assert score.system_name({"tts": "tacotron2"}) == "Tacotron2"
    assert "| synthesis (Coqui GlowTTS) |" in score.markdown(
        dict(r, system="Coqui GlowTTS")
    )
    assert (
        r["systems"]["reference"]["dnsmos_ovrl"] > 1.0
    )  # the recordings get DNSMOS too


def test_the_length_ratio_is_the_synthesis_duration_over_the_recordings(
    decoded, tmp_path
):
    # A draw that speaks u1 half as long again and u2 at its own length.
    root = tmp_path / "slow"
    (root / "decode/eval1/wav").mkdir(parents=True)
    (root / "data").symlink_to(decoded["data"].parent)
    lengths = {}
    for utt in TEXTS:
        ref, _ = sf.read(decoded["data"] / f"{utt}.wav", dtype="float32")
        syn = np.concatenate([ref, ref[: len(ref) // 2]]) if utt == "u1" else ref
        sf.write(root / f"decode/eval1/wav/{utt}.wav", syn, FS, subtype="PCM_16")
        lengths[utt] = (len(syn), len(ref))
    r, md = _score(
        dict(decoded, root=root, set_dir=root / "decode/eval1"),
        *("--griffin_lim_iters", "2", "--dnsmos", "none"),
    )
    synthesised, recorded = (sum(n) for n in zip(*lengths.values()))
    expected = synthesised / recorded
    assert expected > 1.2
    assert r["systems"]["synthesis"]["length_ratio"] == pytest.approx(
        expected, abs=1e-3
    )
    ratio = r["systems"]["synthesis"]["length_ratio"]
    assert f"the recordings' (> 1 speaks slower): {ratio}" in md


def test_the_griffin_lim_ceiling_is_the_same_in_every_scoring(decoded):
    # Griffin-Lim starts from random phases; the ceiling must not move between scorings.
    first, _ = _score(decoded, "--griffin_lim_iters", "4", "--dnsmos", "none")
    np.random.seed(12345)  # whatever state the process is in
    again, _ = _score(decoded, "--griffin_lim_iters", "4", "--dnsmos", "none")
    mcd = [r["systems"]["reference_vocoded"]["mcd"] for r in (first, again)]
    assert mcd[0] == mcd[1] and mcd[0] > 0.5  # the same, and really resynthesised


def test_the_griffin_lim_ceiling_has_as_many_draws_as_the_synthesis(decoded):
    # One draw of Griffin-Lim's initial phases moved the ceiling's CER by 2 points: it is
    # a mean over draws, as the synthesis is, and draw k starts from seed k.
    r, md = _score(decoded, "--griffin_lim_iters", "4", "--dnsmos", "none")
    ceiling = r["reference_vocoded_per_draw"]
    assert [(p["draw"], p["dir"]) for p in ceiling] == [
        (1, "reference_vocoded"),
        (2, "reference_vocoded_seed2"),
    ]
    first, second = (
        sf.read(decoded["set_dir"] / p["dir"] / "u1.wav", dtype="float32")[0]
        for p in ceiling
    )
    ref, _ = sf.read(decoded["data"] / "u1.wav", dtype="float32")
    conf = yaml.safe_load(decoded["config"].read_text())
    for seed, got in ((1, first), (2, second)):
        expected = score.griffin_lim_resynthesis(conf, 4, seed=seed)(ref)
        np.testing.assert_allclose(got, np.clip(expected, -1, 1), atol=1.5 / 32768)
    assert np.abs(first - second).max() > 0.01  # other phases, another wav
    mcd = [p["mcd"] for p in ceiling]
    assert mcd[0] != mcd[1]
    mean, sd = (
        r["systems"]["reference_vocoded"]["mcd"],
        r["spread"]["reference_vocoded"]["mcd"],
    )
    assert mean == pytest.approx(np.mean(mcd), abs=1e-3)
    assert sd == pytest.approx(np.std(mcd, ddof=1), abs=1e-3)
    row = next(line for line in md.splitlines() if line.startswith("| reference ->"))
    assert row.split(" | ")[1] == f"{mean} ± {sd}"
    assert "Griffin-Lim (4 iters): mean ± std over 2 draws" in md


def test_a_draw_missing_an_utterance_is_an_error(decoded):
    extra = decoded["set_dir"] / "wav_seed3"
    extra.mkdir()
    try:
        (extra / "u1.wav").write_bytes((decoded["set_dir"] / "wav/u1.wav").read_bytes())
        with pytest.raises(SystemExit, match="wav_seed3/u2.wav missing"):
            _score(decoded, "--dnsmos", "none")
    finally:
        for f in extra.iterdir():
            f.unlink()
        extra.rmdir()


def test_the_ceiling_goes_through_the_given_vocoder(decoded, tmp_path):
    import torch
    from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank
    from parallel_wavegan.utils import load_model
    from vocoder_checkpoints import write_pwg_hifigan

    pkl = write_pwg_hifigan(tmp_path / "hifigan", fs=FS, hop=HOP, n_mels=80)
    r, md = _score(decoded, "--dnsmos", "none", "--vocoder_file", str(pkl))
    assert r["vocoder"] == f"HiFiGANGenerator ({pkl})" and "griffin_lim_iters" not in r
    # a neural vocoder gives the same wav every time: one draw, no spread
    assert [p["dir"] for p in r["reference_vocoded_per_draw"]] == ["reference_vocoded"]
    assert r["spread"]["reference_vocoded"]["mcd"] is None
    assert f"reference -> features -> HiFiGANGenerator ({pkl})" in md
    assert f"vocoder: HiFiGANGenerator ({pkl})" in md

    generator = load_model(
        str(pkl), yaml.safe_load((pkl.parent / "config.yml").read_text())
    )
    generator.remove_weight_norm()
    ref, _ = sf.read(decoded["data"] / "u1.wav", dtype="float32")
    with torch.no_grad():
        mel, _ = LogMelFbank(**FEATS)(torch.from_numpy(ref)[None])
        expected = generator.inference(mel[0]).view(-1).numpy()
    got, fs = sf.read(decoded["set_dir"] / "reference_vocoded/u1.wav", dtype="float32")
    assert fs == FS and len(got) == HOP * mel.shape[1] == len(expected)
    np.testing.assert_allclose(got, np.clip(expected, -1, 1), atol=1.5 / 32768)

    wrong = write_pwg_hifigan(tmp_path / "hop128", fs=FS, hop=128, n_mels=80)
    with pytest.raises(ValueError, match="n_shift 128 .vocoder. != 256"):
        _score(decoded, "--dnsmos", "none", "--vocoder_file", str(wrong))


def test_wavs_analysed_in_parallel_give_the_serial_numbers(decoded):
    wavs = [
        score.read_wav(p, FS) for p in sorted(decoded["set_dir"].glob("wav*/*.wav"))
    ]
    serial = [(score._mcep(x, 1024, HOP), score._log_f0(x, FS, HOP)) for x in wavs]
    score._ANALYSES.clear()
    score.analyse_in_parallel(wavs, FS, 1024, HOP, jobs=2)
    assert len(score._ANALYSES) == 2 * len(wavs)  # done in the workers, kept here
    for x, (mc, f0) in zip(wavs, serial):
        np.testing.assert_array_equal(score.mcep(x, 1024, HOP), mc)
        np.testing.assert_array_equal(score.log_f0(x, FS, HOP), f0)
    assert len(score._ANALYSES) == 2 * len(wavs)  # nothing computed again


def test_asr_threads_give_each_wav_its_own_transcript(decoded, monkeypatch):
    """Transcripts come back to the wav they belong to whatever order the ASR threads
    finish in: a fake ASR that hears each wav's own sentence, slowest first, gives a
    CER of 0 for every system, and two threads are busy at once."""
    import threading
    import time

    busy, most = [0], [0]
    lock = threading.Lock()
    delays = iter(np.linspace(0.3, 0.0, 64))

    def hear(path):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
            delay = next(delays)
        time.sleep(delay)  # earlier calls finish later
        with lock:
            busy[0] -= 1
        utt = path.rsplit("/", 1)[-1][: -len(".wav")]
        return TEXTS[utt]

    seen = []
    monkeypatch.setattr(
        score, "load_asr", lambda workers=1: (seen.append(workers) or hear, "fake")
    )
    r, _ = _score(decoded, "--dnsmos", "none", "--nj", "2", "--asr", "auto")
    assert seen == [2] and most[0] == 2
    for system in ("synthesis", "reference_vocoded", "reference"):
        assert r["systems"][system]["cer"] == 0.0, system
