"""Glow-TTS inside ESPnet: registration, 2-process training, resume, decoding, packing, loading.

One tiny experiment is built per module: noise "speech" with character transcripts, stats
collection, then 2 epochs of training on two CPU processes through torchrun and gloo.
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import espnet_glowtts  # noqa: F401  (registers glow_tts)

pytestmark = pytest.mark.slow

TEXTS = [
    "hello world",
    "a tiny test",
    "glow tts",
    "speech",
    "flow based model",
    "monotonic",
    "alignment search",
    "ok then",
]
FS = 16000
TINY_TTS_CONF = dict(
    hidden_channels=16,
    filter_channels=32,
    num_encoder_layers=1,
    duration_filter_channels=16,
    decoder_hidden_channels=16,
    num_flow_blocks=2,
    num_coupling_layers=2,
)
DATA_ARGS = [
    "--use_preprocessor",
    "true",
    "--token_type",
    "char",
    "--token_list",
    "tokens.txt",
    "--cleaner",
    "none",
    "--g2p",
    "none",
    "--train_data_path_and_name_and_type",
    "text,text,text",
    "--train_data_path_and_name_and_type",
    "wav.scp,speech,sound",
    "--valid_data_path_and_name_and_type",
    "text,text,text",
    "--valid_data_path_and_name_and_type",
    "wav.scp,speech,sound",
]


def _run(args, cwd, log):
    with open(Path(cwd) / log, "w") as f:
        result = subprocess.run(args, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    text = (Path(cwd) / log).read_text()
    assert result.returncode == 0, text[-3000:]
    return text


def _write_corpus(root: Path) -> None:
    rng = np.random.default_rng(0)
    (root / "wav").mkdir()
    with open(root / "wav.scp", "w") as scp, open(root / "text", "w") as text:
        for i, sentence in enumerate(TEXTS):
            samples = int(FS * (0.4 + 0.0125 * len(sentence)))
            sf.write(
                root / f"wav/utt{i}.wav",
                (0.1 * rng.standard_normal(samples)).astype(np.float32),
                FS,
            )
            scp.write(f"utt{i} wav/utt{i}.wav\n")
            text.write(f"utt{i} {sentence}\n")
    chars = sorted(set("".join(TEXTS)) - {" "})
    tokens = ["<blank>", "<unk>", "<space>", *chars, "<sos/eos>"]
    (root / "tokens.txt").write_text("\n".join(tokens) + "\n")
    config = dict(
        tts="glow_tts",
        tts_conf=TINY_TTS_CONF,
        feats_extract="fbank",
        feats_extract_conf=dict(
            fs=FS, n_fft=512, hop_length=128, win_length=512, n_mels=20
        ),
        normalize="global_mvn",
        optim="adam",
        optim_conf=dict(lr=1e-3),
        max_epoch=2,
        batch_size=4,
        num_iters_per_epoch=2,
    )
    (root / "train.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("espnet")
    _write_corpus(root)
    py = sys.executable
    _run(
        [
            py,
            "-m",
            "espnet_glowtts.bin.tts_train",
            "--collect_stats",
            "true",
            "--normalize",
            "none",
            "--train_shape_file",
            "wav.scp",
            "--valid_shape_file",
            "wav.scp",
            "--output_dir",
            "stats",
            "--config",
            "train.yaml",
            *DATA_ARGS,
        ],
        root,
        "collect_stats.log",
    )
    train_args = [
        "-m",
        "espnet_glowtts.bin.tts_train",
        "--config",
        "train.yaml",
        *DATA_ARGS,
        "--normalize_conf",
        "stats_file=stats/train/feats_stats.npz",
        "--train_shape_file",
        "stats/train/text_shape",
        "--train_shape_file",
        "stats/train/speech_shape",
        "--valid_shape_file",
        "stats/valid/text_shape",
        "--valid_shape_file",
        "stats/valid/speech_shape",
        "--fold_length",
        "150",
        "--fold_length",
        "240000",
        "--output_dir",
        "exp",
        "--resume",
        "true",
        "--ngpu",
        "0",
    ]
    torchrun = Path(py).with_name("torchrun")
    log = _run(
        [
            str(torchrun),
            "--nproc_per_node",
            "2",
            "--master_port",
            "29533",
            *train_args,
            "--multiprocessing_distributed",
            "false",
            "--dist_backend",
            "gloo",
        ],
        root,
        "train.log",
    )
    return dict(root=root, train_args=train_args, train_log=log)


def test_glow_tts_is_registered():
    from espnet2.tasks.tts import tts_choices

    assert tts_choices.get_class("glow_tts") is espnet_glowtts.GlowTTS


def test_two_process_training_through_torchrun(experiment):
    log, exp = experiment["train_log"], experiment["root"] / "exp"
    assert re.search(r":0/2\]", log), "training did not run as rank 0 of a world of 2"
    assert (exp / "2epoch.pth").exists() and (exp / "valid.loss.best.pth").exists()
    losses = [float(x) for x in re.findall(r"\[train\] .*? loss=([\d.]+)", log)]
    assert len(losses) >= 2 and all(np.isfinite(losses))


def test_interrupted_training_resumes(experiment):
    root = experiment["root"]
    log = _run(
        [sys.executable, *experiment["train_args"], "--max_epoch", "3"],
        root,
        "resume.log",
    )
    assert "resumed" in log.lower()
    assert re.search(r"3epoch results", log) and not re.search(r"1epoch results", log)


def test_state_dict_roundtrip_through_espnet_loader(experiment, monkeypatch):
    from espnet2.tasks.tts import TTSTask

    monkeypatch.chdir(experiment["root"])  # the config names the stats file relatively
    exp = experiment["root"] / "exp"
    model, _ = TTSTask.build_model_from_file(
        exp / "config.yaml", exp / "2epoch.pth", "cpu"
    )
    saved = torch.load(exp / "2epoch.pth", weights_only=True)
    loaded = model.state_dict()
    assert set(saved) == set(loaded)  # strict=False in ESPnet's loader hides renames
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_decode_yaml_options_reach_the_model(experiment):
    root = experiment["root"]
    (root / "decode_text").write_text("u1 hello\nu2 glow tts\n")
    for name, length_scale in (("dec1", 1.0), ("dec3", 3.0)):
        (root / f"{name}.yaml").write_text(
            yaml.safe_dump(dict(noise_scale=0.0, length_scale=length_scale))
        )
        _run(
            [
                sys.executable,
                "-m",
                "espnet_glowtts.bin.tts_inference",
                "--ngpu",
                "0",
                "--data_path_and_name_and_type",
                "decode_text,text,text",
                "--train_config",
                "exp/config.yaml",
                "--model_file",
                "exp/2epoch.pth",
                "--output_dir",
                name,
                "--config",
                f"{name}.yaml",
            ],
            root,
            f"{name}.log",
        )

    def lengths(name):
        durations = (root / name / "durations/durations").read_text().split("\n")
        return {
            line.split()[0]: [int(d) for d in line.split()[1:]]
            for line in durations
            if line
        }

    fast, slow = lengths("dec1"), lengths("dec3")
    assert len(fast["u1"]) == len("hello") and len(fast["u2"]) == len("glow tts")
    assert sum(slow["u1"]) >= 2.5 * sum(fast["u1"])
    for wav in ("u1", "u2"):
        audio, fs = sf.read(root / "dec1" / "wav" / f"{wav}.wav")
        assert fs == FS and len(audio) > 0 and np.isfinite(audio).all()


def test_packed_model_loads_with_model_zoo_and_from_pretrained(experiment):
    from espnet2.bin.tts_inference import Text2Speech
    from espnet_model_zoo.downloader import ModelDownloader

    root = experiment["root"]
    _run(
        [
            sys.executable,
            "-m",
            "espnet2.bin.pack",
            "tts",
            "--train_config",
            "exp/config.yaml",
            "--model_file",
            "exp/2epoch.pth",
            "--option",
            "stats/train/feats_stats.npz",
            "--outpath",
            "model.zip",
        ],
        root,
        "pack.log",
    )
    zip_path = str(root / "model.zip")

    files = ModelDownloader(cachedir=str(root / "cache")).download_and_unpack(zip_path)
    tts = Text2Speech(**files, noise_scale=0.0)
    out = tts("glow tts")
    assert out["feat_gen"].shape[1] == 20 and out["wav"].numel() > 0
    torch.testing.assert_close(
        tts("glow tts")["feat_gen"], out["feat_gen"], rtol=0, atol=0
    )

    slow = Text2Speech.from_pretrained(
        model_tag=zip_path, noise_scale=0.0, length_scale=2.0
    )
    assert slow.decode_conf["length_scale"] == 2.0
    slow_out = slow("glow tts")
    tokens = torch.as_tensor(
        slow.preprocess_fn("<dummy>", dict(text="glow tts"))["text"]
    )
    direct = slow.tts.inference(tokens, noise_scale=0.0, length_scale=2.0)
    torch.testing.assert_close(slow_out["feat_gen"], direct["feat_gen"], rtol=0, atol=0)
    assert slow_out["feat_gen"].shape[0] > out["feat_gen"].shape[0]
    per_call = tts("glow tts", decode_conf=dict(length_scale=2.0))
    torch.testing.assert_close(per_call["feat_gen"], direct["feat_gen"], rtol=0, atol=0)

    # Without noise_scale, the model's default applies, not Text2Speech's 0.667 (VITS's).
    default = Text2Speech(**files)
    assert "noise_scale" not in default.decode_conf
    torch.manual_seed(0)
    sampled = default("glow tts")["feat_gen"]
    torch.manual_seed(0)
    expected = default.tts.inference(tokens)["feat_gen"]
    torch.testing.assert_close(sampled, expected, rtol=0, atol=0)

    # CUDA graphs: asked for explicitly, and refused where they cannot run.
    with pytest.raises(ValueError, match="needs a CUDA device"):
        Text2Speech(**files, cuda_graphs=True)
    if torch.cuda.is_available():
        graphed = Text2Speech(**files, noise_scale=0.0, device="cuda", cuda_graphs=True)
        for _ in range(2):  # capture, then replay
            feats = graphed("glow tts")["feat_gen"].cpu()
            torch.testing.assert_close(feats, out["feat_gen"], rtol=0, atol=1e-3)


def test_tts_inference_cuda_graphs_needs_a_gpu(tmp_path):
    from espnet_glowtts.bin.tts_inference import main

    args = [
        "--output_dir",
        str(tmp_path),
        "--data_path_and_name_and_type",
        "t,text,text",
    ]
    with pytest.raises(ValueError, match="--cuda_graphs true needs --ngpu 1"):
        main(args + ["--cuda_graphs", "true"])


def test_checkpoints_are_written_atomically(tmp_path):
    from espnet_glowtts.bin.tts_train import atomic_torch_save

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("killed mid-write")

    atomic_torch_save()
    path = tmp_path / "checkpoint.pth"
    torch.save({"epoch": 1, "w": torch.ones(3)}, path)
    with pytest.raises(RuntimeError, match="mid-write"):
        torch.save({"epoch": 2, "w": torch.ones(3), "bad": Unpicklable()}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1  # the old one stays whole
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"]


# ---------------------------------------------------------------------------------------
# Neural vocoders (ESPnet's route) and first contact with Text2Speech
# LJSpeech's rate and hop; n_fft stays 512, the size of the mel matrix in the checkpoint.
LJ_FEATS = dict(fs=22050, hop_length=256, fmin=80, fmax=7600)


def _config_variant(root: Path, name: str, **changes) -> str:
    """exp/config.yaml with top-level entries (or feats_extract_conf keys) changed."""
    conf = yaml.safe_load((root / "exp/config.yaml").read_text())
    conf["feats_extract_conf"].update(changes.pop("feats", {}))
    conf.update(changes)
    (root / f"exp/{name}.yaml").write_text(yaml.safe_dump(conf))
    return f"exp/{name}.yaml"


def test_parallel_wavegan_hifigan_decodes_through_text2speech(experiment, monkeypatch):
    from espnet2.bin.tts_inference import Text2Speech
    from vocoder_checkpoints import write_pwg_hifigan

    root = experiment["root"]
    monkeypatch.chdir(root)
    train_config = _config_variant(root, "config_lj", feats=LJ_FEATS)
    pkl = write_pwg_hifigan(root / "pwg_hifigan", n_mels=20, n_fft=512)
    tts = Text2Speech(train_config, "exp/2epoch.pth", vocoder_file=pkl, noise_scale=0.0)
    assert type(tts.vocoder).__name__ == "ParallelWaveGANPretrainedVocoder"
    assert tts.fs == 22050
    out = tts("glow tts")
    frames = out["feat_gen"].shape[0]
    assert out["wav"].shape == (256 * frames,) and torch.isfinite(out["wav"]).all()
    # the vocoder gets the denormalised features, as ESPnet hands every vocoder
    torch.testing.assert_close(out["wav"], tts.vocoder(out["feat_gen_denorm"]))


def test_vocoder_that_espnet_trained_decodes_through_text2speech(
    experiment, monkeypatch
):
    from espnet2.bin.tts_inference import Text2Speech
    from vocoder_checkpoints import write_espnet_joint_hifigan

    from espnet_glowtts.vocoder import ESPnetJointVocoder

    root = experiment["root"]
    monkeypatch.chdir(root)
    train_config = _config_variant(root, "config_lj", feats=LJ_FEATS)
    pth = write_espnet_joint_hifigan(
        root / "joint_hifigan", root / "joint_stats.npz", n_mels=20, n_fft=512
    )
    tts = Text2Speech(train_config, "exp/2epoch.pth", vocoder_file=pth, noise_scale=0.0)
    assert isinstance(tts.vocoder, ESPnetJointVocoder) and tts.fs == 22050
    out = tts("glow tts")
    assert out["wav"].shape == (256 * out["feat_gen"].shape[0],)
    assert torch.isfinite(out["wav"]).all() and out["wav"].abs().max() > 0


def _one_line_error(excinfo, *fragments):
    message = str(excinfo.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_vocoder_errors_name_the_file(experiment, monkeypatch):
    from espnet2.bin.tts_inference import Text2Speech
    from vocoder_checkpoints import write_pwg_hifigan

    root = experiment["root"]
    monkeypatch.chdir(root)
    model = ("exp/config.yaml", "exp/2epoch.pth")  # 16 kHz, hop 128, fmin 80, fmax 7600
    with pytest.raises(FileNotFoundError) as e:
        Text2Speech(*model, vocoder_file="nowhere/voc.pkl")
    _one_line_error(e, "nowhere/voc.pkl", "does not exist")

    lj = write_pwg_hifigan(root / "voc_lj", n_mels=20)  # 22.05 kHz, hop 256
    with pytest.raises(ValueError) as e:
        Text2Speech(*model, vocoder_file=lj)
    _one_line_error(e, str(root / "voc_lj/config.yml"), "fs 22050", "n_shift 256")

    fmax = write_pwg_hifigan(
        root / "voc_fmax", fs=FS, hop=128, n_fft=512, n_mels=20, fmax=8000
    )
    with pytest.raises(ValueError) as e:
        Text2Speech(*model, vocoder_file=fmax)
    _one_line_error(e, "fmax 8000 (vocoder) != 7600 (TTS features)")

    matching = write_pwg_hifigan(root / "voc_16k", fs=FS, hop=128, n_fft=512, n_mels=20)
    Text2Speech(*model, vocoder_file=matching)  # the same features load
    griffin_lim = root / "griffin_lim.yaml"
    griffin_lim.write_text(yaml.safe_dump(dict(griffin_lim_iters=8)))
    with pytest.raises(ValueError) as e:
        Text2Speech(*model, vocoder_file=matching, vocoder_config=griffin_lim)
    _one_line_error(e, str(griffin_lim), "not a parallel_wavegan config")

    (root / "voc_16k/config.yml").rename(root / "voc_16k/elsewhere.yml")
    with pytest.raises(FileNotFoundError) as e:
        Text2Speech(*model, vocoder_file=matching)
    _one_line_error(e, str(matching), "config.yml")

    with pytest.raises(ValueError) as e:
        Text2Speech(*model, vocoder_file=griffin_lim)
    _one_line_error(e, str(griffin_lim), "unknown format")


def test_empty_or_unspeakable_text_is_a_value_error(experiment, monkeypatch):
    from espnet2.bin.tts_inference import Text2Speech

    root = experiment["root"]
    monkeypatch.chdir(root)
    # The same model behind ESPnet's espeak-ng phoneme front end, as the recipe packs it.
    train_config = _config_variant(
        root,
        "config_phn",
        token_type="phn",
        g2p="espeak_ng_english_us_vits",
        cleaner="tacotron",
    )
    tts = Text2Speech(train_config, "exp/2epoch.pth", noise_scale=0.0)
    for text in ("", "   ", '"', "()"):
        with pytest.raises(ValueError) as e:
            tts(text)
        _one_line_error(e, repr(text))
    assert tts("hello")["feat_gen"].shape[0] > 0


def test_import_prints_no_download_errors_and_lets_parallel_wavegan_load():
    code = (
        "import espnet_glowtts, scipy.signal, parallel_wavegan.models\n"
        "assert scipy.signal.kaiser is scipy.signal.windows.kaiser\n"
        "import espnet2.text.phoneme_tokenizer as p; assert p.g2p_en is not None\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[nltk_data]" not in result.stderr + result.stdout, result.stderr
