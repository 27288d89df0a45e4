"""Issue 5 tools: Glow-TTS teacher durations in ESPnet's FastSpeech2 format; the speed
benchmark's matched-work helpers. Tiny models and a 4-utterance noise corpus: seconds."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import espnet_glowtts  # noqa: F401  (registers glow_tts)

ROOT = Path(__file__).resolve().parents[1]
FS = 16000
TEXTS = {"utt1": "hello world", "utt2": "glow tts", "utt3": "a tiny test", "utt4": "speech"}
FEATS = ["--feats_extract", "fbank", "--feats_extract_conf", f"fs={FS}",
         "--feats_extract_conf", "n_fft=512", "--feats_extract_conf", "hop_length=128",
         "--feats_extract_conf", "win_length=512", "--feats_extract_conf", "n_mels=20"]
TINY_GLOW = dict(hidden_channels=16, filter_channels=32, num_encoder_layers=1,
                 duration_filter_channels=16, decoder_hidden_channels=16, num_flow_blocks=2,
                 num_coupling_layers=2)
TINY_FS2 = dict(adim=16, aheads=2, elayers=1, eunits=32, dlayers=1, dunits=32,
                duration_predictor_layers=1, duration_predictor_chans=16,
                pitch_predictor_layers=1, pitch_predictor_chans=16,
                energy_predictor_layers=1, energy_predictor_chans=16, postnet_layers=0,
                reduction_factor=1)


def _bench():
    spec = importlib.util.spec_from_file_location("inference_speed",
                                                  ROOT / "bench" / "inference_speed.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["inference_speed"] = module
    spec.loader.exec_module(module)
    return module


def _tts_args(root: Path, extra):
    from espnet2.tasks.tts import TTSTask

    args = TTSTask.get_parser().parse_args(
        ["--token_list", str(root / "tokens.txt"), "--token_type", "char", "--cleaner",
         "none", "--g2p", "none", "--normalize", "none", *FEATS, *extra])
    args.token_list = (root / "tokens.txt").read_text().split()
    return args


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher")
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    with open(data / "wav.scp", "w") as scp, open(data / "text", "w") as text:
        for utt, sentence in TEXTS.items():
            samples = int(FS * (0.3 + 0.02 * len(sentence))) + int(rng.integers(0, 300))
            sf.write(root / f"{utt}.wav",
                     (0.1 * rng.standard_normal(samples)).astype(np.float32), FS)
            scp.write(f"{utt} {root / utt}.wav\n")
            text.write(f"{utt} {sentence}\n")
    chars = sorted(set("".join(TEXTS.values())) - {" "})
    (root / "tokens.txt").write_text("\n".join(["<blank>", "<unk>", "<space>", *chars,
                                                "<sos/eos>"]) + "\n")
    return root


def test_teacher_durations_train_espnet_fastspeech2(corpus):
    """Durations from Glow-TTS load as ESPnet's FS2 data (text_int) and train it."""
    from espnet2.tasks.tts import TTSTask

    from glowtts_recipe.teacher_durations import main, read_durations

    # A Glow-TTS experiment as ESPnet writes it: config.yaml and a state dict.
    args = _tts_args(corpus, ["--tts", "glow_tts", "--tts_conf", yaml.safe_dump(TINY_GLOW)])
    torch.manual_seed(0)
    glow = TTSTask.build_model(args)
    torch.save(glow.state_dict(), corpus / "glow.pth")
    (corpus / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    main(["--train_config", str(corpus / "config.yaml"), "--model_file",
          str(corpus / "glow.pth"), "--data_dir", str(corpus / "data"), "--out_dir",
          str(corpus / "teacher"), "--batch_size", "3"])

    durations = read_durations(corpus / "teacher" / "durations")
    assert sorted(durations) == sorted(TEXTS)
    fbank = glow.feats_extract
    for utt, sentence in TEXTS.items():
        wav, _ = sf.read(corpus / f"{utt}.wav", dtype="float32")
        _, n_frames = fbank(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
        d = durations[utt]
        assert len(d) == len(sentence) + 1  # one per char token (<space> too) + <sos/eos>
        assert sum(d) == int(n_frames[0]) and d[-1] == 0 and min(d[:-1]) >= 0

    # ESPnet's FastSpeech2 with token-averaged pitch and energy reads them exactly as the
    # recipe passes them (durations,durations,text_int) and trains a step on them.
    fs2_args = _tts_args(corpus, [
        "--tts", "fastspeech2", "--tts_conf", yaml.safe_dump(TINY_FS2),
        "--pitch_extract", "dio", "--pitch_extract_conf", f"fs={FS}",
        "--pitch_extract_conf", "n_fft=512", "--pitch_extract_conf", "hop_length=128",
        "--energy_extract", "energy", "--energy_extract_conf", f"fs={FS}",
        "--energy_extract_conf", "n_fft=512", "--energy_extract_conf", "hop_length=128",
        "--energy_extract_conf", "win_length=512"])
    fs2 = TTSTask.build_model(fs2_args)
    loader = TTSTask.build_streaming_iterator(
        data_path_and_name_and_type=[
            (str(corpus / "data" / "text"), "text", "text"),
            (str(corpus / "data" / "wav.scp"), "speech", "sound"),
            (str(corpus / "teacher" / "durations"), "durations", "text_int")],
        dtype="float32", batch_size=4, num_workers=0,
        preprocess_fn=TTSTask.build_preprocess_fn(fs2_args, True),
        collate_fn=TTSTask.build_collate_fn(fs2_args, True))
    optimizer = torch.optim.Adam(fs2.parameters(), lr=1e-3)
    for _, batch in loader:
        loss, stats, _ = fs2(**batch)
        assert torch.isfinite(loss) and stats["duration_loss"] is not None
        loss.backward()
        optimizer.step()


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
    taco = Tacotron2(idim=12, odim=8, embed_dim=16, eunits=16, econv_chans=16, adim=16,
                     dunits=16, prenet_units=16, postnet_chans=16).eval()
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
    spec = importlib.util.spec_from_file_location("robustness",
                                                  ROOT / "bench" / "robustness.py")
    robustness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(robustness)
    sentences = robustness.read_sentences(ROOT / "egs2" / "TEMPLATE" / "tts_glow" / "glowtts_recipe" / "data" / "sentences.txt")
    assert len(sentences) > 100 and not any(s.startswith("#") for s in sentences)
    inputs = robustness.build_inputs(sentences[-30:], (100, 250, 500, 1000), per_length=2)
    assert len(inputs) == 8
    for item in inputs:
        assert abs(len(item["text"]) - item["target"]) <= 40, (item["target"], item["text"])
