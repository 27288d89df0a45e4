"""ONNX export and the torch-free runtime (issue 11): fidelity to torch, the front end,
long texts, the runtime's errors, and a venv holding only requirements-runtime.txt."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import espnet_glowtts  # noqa: F401  (registers glow_tts)
from espnet_glowtts.export import DecoderGraph, _WinogradConv, export_graphs
from espnet_glowtts.runtime import ExportError, Synthesizer, split_sentences
from espnet_glowtts.runtime.synthesizer import (
    expand_prior,
    fold_blank_durations,
    intersperse,
)
from espnet_glowtts.tensor_utils import fold_blank_durations as torch_fold
from tests.conftest import randomize_flows, tiny_glow_tts

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ROOT / "egs2/TEMPLATE/tts_glow/glowtts_recipe/data/sentences.txt"
TINY = dict(
    hidden_channels=16,
    filter_channels=32,
    num_encoder_layers=1,
    duration_filter_channels=16,
    decoder_hidden_channels=16,
    num_flow_blocks=2,
    num_coupling_layers=2,
)
# Cleaner cases beyond the demo's sentences: numbers, abbreviations, symbols, quotes.
EXTRA_TEXTS = [
    'Dr. Smith paid $5.20 for 3 apples; "really?" - yes & no.',
    "Mr. Brown's 2nd car (a Ford) cost 1,250 dollars!",
]


def _bench_module():
    spec = importlib.util.spec_from_file_location(
        "bench_onnx", ROOT / "bench/onnx_speed.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def demo_sentences():
    lines = SENTENCES.read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def _run_graphs(model, out_dir, ids, noise_scale=0.0, length_scale=1.0, **cond):
    """The runtime's steps on bare graphs (no config): features and folded durations."""
    import onnxruntime as ort

    enc = ort.InferenceSession(str(out_dir / "encoder.onnx"))
    dec = ort.InferenceSession(str(out_dir / "decoder.onnx"))
    cond = {k: v.numpy() for k, v in cond.items()}
    mean, log_std, w = enc.run(
        None,
        dict(
            text=intersperse(ids, model.blank_id)[None],
            length_scale=np.array(length_scale, np.float32),
            **cond,
        ),
    )
    mean_y, log_std_y, w = expand_prior(mean, log_std, w[0], model.squeeze_factor)
    (feats,) = dec.run(
        None,
        dict(
            mean_y=mean_y,
            log_std_y=log_std_y,
            noise=np.zeros_like(mean_y),
            noise_scale=np.array(noise_scale, np.float32),
            **cond,
        ),
    )
    return feats[0], fold_blank_durations(w)


@pytest.mark.parametrize(
    "conditioning", ["none", "speakers_languages_embeddings", "sigmoid_scale_dilated"]
)
def test_graphs_match_torch_at_zero_noise(tmp_path, conditioning):
    extra = dict(spks=3, langs=2, spk_embed_dim=5) if "speakers" in conditioning else {}
    options = dict(sigmoid_scale=True, decoder_dilation_rate=2, squeeze_factor=3)
    model = tiny_glow_tts(
        mean_only=False, **extra, **(options if "dilated" in conditioning else {})
    )
    randomize_flows(model)
    model.eval()
    export_graphs(model, tmp_path)
    g = torch.Generator().manual_seed(1)
    for n in (1, 7, 60):  # lengths unlike the export's example: the axes are dynamic
        ids = torch.randint(2, 11, (n,), generator=g)
        cond = {}
        if extra:
            cond = dict(
                sids=torch.tensor([2]),
                lids=torch.tensor([1]),
                spembs=torch.randn(1, 5, generator=g),
            )
        ref = model.inference(ids, noise_scale=0.0, length_scale=1.7, **cond)
        feats, durations = _run_graphs(
            model, tmp_path, ids.numpy(), length_scale=1.7, **cond
        )
        np.testing.assert_array_equal(durations, ref["duration"].numpy())
        assert np.abs(feats - ref["feat_gen"].numpy()).max() < 1e-3


@pytest.mark.parametrize("kernel_size", [3, 5, 7])
def test_winograd_convolution_equals_conv1d(kernel_size):
    g = torch.Generator().manual_seed(kernel_size)
    conv = torch.nn.Conv1d(6, 10, kernel_size, padding=kernel_size // 2).double()
    with torch.no_grad():
        conv.weight.normal_(generator=g)
        conv.bias.normal_(generator=g)
    fast = _WinogradConv(conv.float())
    for length in (1, 2, 3, 4, 5, 9, 64, 131):  # shorter than a tile, ragged last tiles
        x = torch.randn(1, 6, length, generator=g, dtype=torch.float64)
        ref = conv.double()(x)
        y = fast(x.float()).double()
        assert y.shape == ref.shape
        assert (y - ref).abs().max() < 2e-5 * ref.abs().max()


def test_decoder_graph_forms_agree():
    model = tiny_glow_tts()
    randomize_flows(model)
    model.eval()
    winograd, direct = DecoderGraph(model), DecoderGraph(model, winograd=False)
    assert winograd.winograd and not direct.winograd
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(1, 8, 46, generator=g)
    args = (mean, mean - 1.0, torch.randn(1, 8, 46, generator=g), torch.tensor(0.5))
    with torch.no_grad():
        a, b = winograd(*args), direct(*args)
    assert a.shape == (1, 46, 8) and (a - b).abs().max() < 1e-4
    for untileable in (dict(decoder_dilation_rate=2), dict(decoder_kernel_size=9)):
        assert not DecoderGraph(tiny_glow_tts(**untileable).eval()).winograd


def test_numpy_steps_match_torch_helpers():
    w = torch.tensor([[3, 1, 0, 2, 5, 1, 4]])
    np.testing.assert_array_equal(
        fold_blank_durations(w[0].numpy()), torch_fold(w, torch.tensor([3]))[0].numpy()
    )
    mean = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    mean_y, _, adjusted = expand_prior(mean, mean, np.array([1, 2, 2]), 2)
    assert adjusted.tolist() == [1, 2, 3] and mean_y.shape == (1, 2, 6)
    np.testing.assert_array_equal(mean_y[0, 1], [3, 4, 4, 5, 5, 5])


@pytest.mark.parametrize("hop", [256, 300])  # 300: frames overlap in partial blocks
def test_numpy_griffin_lim_matches_librosa(hop):
    import librosa

    from espnet_glowtts.runtime.vocoder import GriffinLim, mel_basis

    np.testing.assert_allclose(
        mel_basis(22050, 1024, 80, 80, 7600),
        librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=80, fmax=7600),
        atol=1e-7,
    )
    logmel = np.random.default_rng(0).normal(-2.0, 0.5, (40, 80))
    gl = GriffinLim(22050, 1024, hop, None, 80, 80, 7600, n_iter=4)
    expected = librosa.griffinlim(
        gl.linear(logmel),
        n_iter=4,
        hop_length=hop,
        window="hann",
        center=True,
        init=None,
    )
    np.testing.assert_allclose(gl(logmel, init_phase=None), expected, atol=1e-5)


def test_split_sentences():
    text = 'Hello there. How are you?  Fine;\nok "Yes." Then, ' + "word " * 12
    pieces = split_sentences(text, max_chars=50)
    assert pieces[:5] == ["Hello there.", "How are you?", "Fine;", 'ok "Yes."', "Then,"]
    assert all(0 < len(p) <= 50 for p in pieces)
    assert " ".join(pieces).split() == text.split()  # nothing lost or reordered
    assert split_sentences("x" * 120, 50) == ["x" * 50, "x" * 50, "x" * 20]
    assert split_sentences("  \n ") == []


def test_runtime_imports_without_torch_and_espnet():
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'espnet2', 'espnet'):\n"
        "            raise ModuleNotFoundError(f'blocked {name}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import espnet_glowtts, espnet_glowtts.runtime\n"
        "from espnet_glowtts.runtime import Synthesizer\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'espnet2')]\n"
        "assert espnet_glowtts.__all__ == []\n"
    )
    subprocess.run(
        [sys.executable, "-c", blocker],
        check=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


# --------------------------------------------------------------------------------------
# Through ESPnet: an experiment directory (random weights) exported by the CLI.
@pytest.fixture(scope="module")
def phn_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    bench = _bench_module()
    exp = bench.make_experiment(
        root / "exp",
        TINY,
        demo_sentences() + EXTRA_TEXTS,
        fs=16000,
        n_fft=512,
        n_shift=128,
        n_mels=20,
    )
    out = root / "exported"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "espnet_glowtts.bin.export_onnx",
            "--model_tag",
            str(exp),
            "--out_dir",
            str(out),
            "--quantize",
            "true",
        ],
        check=True,
        cwd=root,
    )
    return dict(exp=exp, out=out, root=root)


@pytest.fixture(scope="module")
def text2speech(phn_export):
    from espnet2.bin.tts_inference import Text2Speech

    exp = phn_export["exp"]
    return Text2Speech(
        train_config=exp / "config.yaml",
        model_file=exp / "model.pth",
        noise_scale=0.0,
        max_chars=60,
    )


@pytest.mark.slow
def test_export_directory(phn_export):
    out = phn_export["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "README.txt",
        "config.json",
        "decoder.int8.onnx",
        "decoder.onnx",
        "encoder.int8.onnx",
        "encoder.onnx",
    ]
    config = json.loads((out / "config.json").read_text())
    assert config["features"]["fs"] == 16000 and config["features"]["n_mels"] == 20
    assert (
        config["cleaner"] == "tacotron" and config["g2p"] == "espeak_ng_english_us_vits"
    )
    assert len(config["normalize"]["mean"]) == 20
    assert not list(
        phn_export["root"].glob(".tmp.*")
    )  # the temporary directory is gone


@pytest.mark.slow
def test_runtime_matches_text2speech_on_demo_sentences(phn_export, text2speech):
    tts = Synthesizer(phn_export["out"])
    worst = 0.0
    for text in demo_sentences()[:40] + EXTRA_TEXTS:
        ids = tts.frontend(text)
        expected = text2speech.preprocess_fn("<x>", dict(text=text))["text"]
        np.testing.assert_array_equal(ids, expected)  # same cleaner, g2p and unknowns
        ref = text2speech(torch.as_tensor(expected))  # tokens: one pass, never split
        out = tts.synthesize_ids(ids, noise_scale=0.0, vocoder=False)
        np.testing.assert_array_equal(out["duration"], ref["duration"].numpy())
        worst = max(worst, np.abs(out["feat_gen"] - ref["feat_gen"].numpy()).max())
        np.testing.assert_allclose(
            out["feat_gen_denorm"], ref["feat_gen_denorm"].numpy(), atol=1e-3 * 2
        )
    assert worst < 1e-3
    for text in demo_sentences()[40:]:
        np.testing.assert_array_equal(
            tts.frontend(text),
            text2speech.preprocess_fn("<x>", dict(text=text))["text"],
        )


@pytest.mark.slow
def test_long_text_is_split_in_both_paths(phn_export, text2speech):
    sentences = demo_sentences()[:6]
    text = " ".join(sentences)
    assert len(text) > 60
    # torch: Text2Speech(max_chars=60) speaks each sentence and concatenates
    whole = text2speech(text)
    pieces = split_sentences(text, 60)
    assert len(pieces) >= len(sentences) and max(map(len, pieces)) <= 60
    parts = [text2speech(piece) for piece in pieces]
    for key in ("feat_gen", "duration"):
        torch.testing.assert_close(whole[key], torch.cat([p[key] for p in parts]))
    assert whole["wav"].numel() == sum(p["wav"].numel() for p in parts)
    # runtime: the same pieces, the same features
    tts = Synthesizer(phn_export["out"], max_chars=60)
    out = tts(text, noise_scale=0.0)
    assert np.abs(out["feat_gen"] - whole["feat_gen"].numpy()).max() < 1e-3
    np.testing.assert_array_equal(out["duration"], whole["duration"].numpy())
    assert out["wav"].dtype == np.float32 and len(out["wav"]) == whole["wav"].numel()


@pytest.mark.slow
def test_runtime_cli_stream_and_int8(phn_export, tmp_path):
    text = " ".join(demo_sentences()[:3])
    for extra in ([], ["--stream"], ["--quantized"]):
        wav = tmp_path / f"out{len(extra)}{''.join(extra)}.wav"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "espnet_glowtts.runtime",
                "--model_dir",
                str(phn_export["out"]),
                "--text",
                text,
                "--out",
                str(wav),
                "--seed",
                "0",
                "--max_chars",
                "70",
                *extra,
            ],
            check=True,
        )
        audio, fs = sf.read(wav)
        assert fs == 16000 and len(audio) > 16000 * 0.5 and np.abs(audio).max() > 0
    # int8 stays near float32: 0.2 std from the direct form, 0.93 from quantized Winograd
    fp32, int8 = (
        Synthesizer(phn_export["out"], quantized=q)(
            text, noise_scale=0.0, vocoder=False
        )["feat_gen"]
        for q in (False, True)
    )
    n = min(len(fp32), len(int8))
    assert np.abs(fp32[:n] - int8[:n]).mean() < 0.5 * fp32.std()


@pytest.mark.slow
def test_runtime_errors(phn_export, tmp_path):
    out = phn_export["out"]
    with pytest.raises(ExportError, match="not an exported Glow-TTS model"):
        Synthesizer(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    config = json.loads((out / "config.json").read_text())
    for change, message in (
        (dict(format_version=99), "format_version 99"),
        (dict(token_list=[]), "no token_list"),
    ):
        (broken / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(ExportError, match=message):
            Synthesizer(broken)
    tts = Synthesizer(out)
    with pytest.raises(ValueError, match="text is empty"):
        tts("  ")
    with pytest.raises(ValueError, match="no speakable tokens"):
        tts("\u2603 \u2603")  # unidecode: no letters, so no phonemes
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "espnet_glowtts.runtime",
            "--model_dir",
            str(tmp_path),
            "--text",
            "hi",
            "--out",
            str(tmp_path / "a.wav"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]  # (ESPnet's import noise comes first)
    assert last.startswith("error: ") and "not an exported" in last


@pytest.mark.slow
def test_speaker_ids_are_checked(tmp_path):
    exp = _bench_module().make_experiment(
        tmp_path / "exp",
        {**TINY, "spks": 3},
        ["abc def"],
        token_type="char",
        cleaner="none",
        g2p="none",
        fs=16000,
        n_fft=512,
        n_shift=128,
        n_mels=20,
    )
    from espnet_glowtts.bin.export_onnx import export

    export(str(exp), tmp_path / "out", check_text="abc fed")
    tts = Synthesizer(tmp_path / "out")
    assert len(tts("bad cafe", sids=2)["wav"]) > 0
    with pytest.raises(ValueError, match="sids 3 is out of range"):
        tts("bad cafe", sids=3)
    with pytest.raises(ValueError, match="sids is required"):
        tts("bad cafe")


@pytest.mark.slow
def test_runtime_in_a_venv_from_requirements_runtime(phn_export, tmp_path):
    """Only requirements-runtime.txt installed, the repository on PYTHONPATH."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "-q",
            "-r",
            str(ROOT / "requirements-runtime.txt"),
        ],
        check=True,
    )
    wav = tmp_path / "venv.wav"
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    code = (
        "import sys, runpy; sys.argv = ['rt', '--model_dir', sys.argv[1], '--text', "
        "'Hello there. A second sentence.', '--out', sys.argv[2]];"
        "runpy.run_module('espnet_glowtts.runtime', run_name='__main__');"
        "assert 'torch' not in sys.modules and 'espnet2' not in sys.modules"
    )
    subprocess.run(
        [str(py), "-c", code, str(phn_export["out"]), str(wav)],
        check=True,
        env=dict(env, PYTHONPATH=str(ROOT)),
    )
    audio, fs = sf.read(wav)
    assert fs == 16000 and len(audio) > 0
    result = subprocess.run(
        [str(py), "-c", "import torch"], env=env, capture_output=True
    )
    assert result.returncode != 0  # the venv really has no torch
