"""Issue 5 tools: the speed benchmark's matched-work helpers, the comparison report.
Tiny models: seconds. (Glow-TTS as FastSpeech2's duration teacher is tested through the
recipe's standard flow, --teacher_dumpdir, in tests/test_recipe.py.)"""

import importlib.util
import sys
from pathlib import Path

import torch

import espnet_glowtts  # noqa: F401  (registers glow_tts)

ROOT = Path(__file__).resolve().parents[1]
TINY_GLOW = dict(
    hidden_channels=16,
    filter_channels=32,
    num_encoder_layers=1,
    duration_filter_channels=16,
    decoder_hidden_channels=16,
    num_flow_blocks=2,
    num_coupling_layers=2,
)
TINY_FS2 = dict(
    adim=16,
    aheads=2,
    elayers=1,
    eunits=32,
    dlayers=1,
    dunits=32,
    duration_predictor_layers=1,
    duration_predictor_chans=16,
    pitch_predictor_layers=1,
    pitch_predictor_chans=16,
    energy_predictor_layers=1,
    energy_predictor_chans=16,
    postnet_layers=0,
    reduction_factor=1,
)


def _bench():
    spec = importlib.util.spec_from_file_location(
        "inference_speed", ROOT / "bench" / "inference_speed.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["inference_speed"] = module
    spec.loader.exec_module(module)
    return module


def test_bench_forces_the_same_output_length():
    """Every benchmarked model makes exactly the requested frames (tiny configs)."""
    bench = _bench()
    from espnet2.tts.fastspeech2 import FastSpeech2
    from espnet2.tts.tacotron2 import Tacotron2

    assert bench.frames_for(180) % 2 == 0 and bench.frames_for(3) >= 6
    d = bench.even_durations(7, 40)
    assert int(d.sum()) == 40 and int(d.min()) >= 1 and d.numel() == 7

    torch.manual_seed(0)
    text = torch.randint(2, 10, (7,))
    taco = Tacotron2(
        idim=12,
        odim=8,
        embed_dim=16,
        eunits=16,
        econv_chans=16,
        adim=16,
        dunits=16,
        prenet_units=16,
        postnet_chans=16,
    ).eval()
    out = taco.inference(text, threshold=2.0, maxlenratio=(40 + 0.5) / 8)["feat_gen"]
    assert out.size(0) == 40
    fs2 = FastSpeech2(idim=12, odim=8, **TINY_FS2).eval()
    forced = torch.cat([d, d.new_zeros(1)])[None]
    fs2.duration_predictor.inference = lambda hs, masks: forced.clone()
    assert fs2.inference(text)["feat_gen"].size(0) == 40

    glow = espnet_glowtts.GlowTTS(idim=12, odim=8, **TINY_GLOW).eval()
    cached = glow.inference(text, durations=d, noise_scale=0.0)["feat_gen"]
    assert cached.size(0) == 40
    from espnet_glowtts import flows

    original = flows.cached_tensor
    with bench.glow_tts_plain_path():
        assert flows.cached_tensor is not original
        plain = glow.inference(text, durations=d, noise_scale=0.0)["feat_gen"]
    torch.testing.assert_close(plain, cached)
    assert flows.cached_tensor is original


def test_peak_tensor_memory_counts_live_storage():
    bench = _bench()
    with bench.PeakTensorMemory() as tracker:
        a = torch.ones(1000, 250)  # 1 MB
        b = a * 2  # 2 MB live
        del a
        c = b + 1  # still 2 MB live
        del b, c
    assert abs(tracker.peak - 2_000_000) < 10_000 and tracker.current == 0


def test_compare_report_readme_section_and_reporter_times(tmp_path):
    import datetime

    from glowtts_recipe.compare_report import BEGIN, END, _seconds, put_in_readme

    assert _seconds({"__timedelta_seconds__": 12.5}) == 12.5
    assert _seconds(datetime.timedelta(minutes=1)) == 60.0 and _seconds(None) == 0.0
    readme = tmp_path / "README.md"
    readme.write_text("# Recipe\n\nText.\n")
    put_in_readme(readme, "| a |\n")
    put_in_readme(readme, "| b |\n")  # replaces, never duplicates
    text = readme.read_text()
    assert text.startswith("# Recipe\n\nText.\n") and text.count(BEGIN) == 1
    assert "| b |" in text and "| a |" not in text and text.rstrip().endswith(END)


def test_robustness_inputs_grow_to_the_targets():
    spec = importlib.util.spec_from_file_location(
        "robustness", ROOT / "bench" / "robustness.py"
    )
    robustness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(robustness)
    sentences = robustness.read_sentences(
        ROOT
        / "egs2"
        / "TEMPLATE"
        / "tts_glow"
        / "glowtts_recipe"
        / "data"
        / "sentences.txt"
    )
    assert len(sentences) > 100 and not any(s.startswith("#") for s in sentences)
    inputs = robustness.build_inputs(
        sentences[-30:], (100, 250, 500, 1000), per_length=2
    )
    assert len(inputs) == 8
    for item in inputs:
        assert abs(len(item["text"]) - item["target"]) <= 40, (
            item["target"],
            item["text"],
        )


def test_compare_report_summary_gives_the_shell_whole_seconds(tmp_path, capsys):
    # compare.sh compares budgets with [ -ge ]: a float there stopped the comparison
    from glowtts_recipe.compare_report import main

    epoch = dict(time={"__timedelta_seconds__": 500.4}, total_count=250)
    stats = {1: dict(train=epoch, valid=dict(time={"__timedelta_seconds__": 36.5}))}
    stats[2] = dict(train=dict(epoch, total_count=500), valid=stats[1]["valid"])
    torch.save(dict(reporter=dict(stats=stats)), tmp_path / "checkpoint.pth")
    main(["summary", str(tmp_path), "--field", "train_seconds"])
    assert capsys.readouterr().out.strip() == "1074"  # 2 x (500.4 + 36.5) = 1073.8
    main(["summary", str(tmp_path)])
    assert '"steps": 500' in capsys.readouterr().out


def test_mel_postfilters_do_what_their_names_say():
    import numpy as np

    spec = importlib.util.spec_from_file_location(
        "mel_postfilter", ROOT / "bench" / "mel_postfilter.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    mel = rng.normal(-2.0, 0.5, (120, 80))
    target = rng.uniform(0.5, 2.0, 80)
    filters = module.postfilters(target)
    np.testing.assert_array_equal(filters["none"](mel), mel)
    gv = filters["gv"](mel)
    np.testing.assert_allclose(gv.var(0), target, rtol=1e-5)
    np.testing.assert_allclose(gv.mean(0), mel.mean(0), atol=1e-9)
    np.testing.assert_allclose(filters["scale1.2"](mel).var(0), 1.44 * mel.var(0))
    change = [float(np.abs(np.diff(mel, axis=a)).mean()) for a in (0, 1)]
    sharp_t = filters["sharpen_t"](mel)
    sharp_tf = filters["sharpen_tf"](mel)
    assert np.abs(np.diff(sharp_t, axis=0)).mean() > change[0]
    one_bin = np.zeros_like(mel)
    one_bin[:, 5] = mel[:, 5]  # along time only: no other bin moves; over both: they do
    assert not filters["sharpen_t"](one_bin)[:, [4, 6]].any()
    assert filters["sharpen_tf"](one_bin)[:, [4, 6]].any()
    assert np.abs(np.diff(sharp_tf, axis=1)).mean() > change[1]
