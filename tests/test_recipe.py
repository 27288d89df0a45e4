"""The egs2/ljspeech/tts_glow recipe end to end on a handful of espeak-ng utterances.

One copy of the recipe in a temporary directory goes through every stage of ESPnet's
tts.sh layout with a tiny model: stages 1-5, a training run (stage 6) killed after its
first checkpoint and resumed, the duration predictor refitted to the final alignments
(stage 6d), then decoding with two draws and scoring (stage 7) and
packing (stage 8). Then the paths ESPnet users take from there, each on the same data:
teacher forcing into a teacher dump that an ESPnet FastSpeech2 trains from through the same
tts.sh (--teacher_dumpdir), fine-tuning from the trained model in two CPU processes (DDP),
and the one-line errors. The packed zip is loaded the two ways model-zoo users do, and a
rerun of all stages must change nothing.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs2" / "ljspeech" / "tts_glow"
TOKENS = (
    "phn_tacotron_espeak_ng_english_us_vits"  # ESPnet: <token_type>_<cleaner>_<g2p>
)
EXP = f"exp/tts_tiny_raw_{TOKENS}"
DECODE = f"{EXP}/decode_glow_tts_mini_train.loss.ave"  # espeak: the mini decode config
TEACHER = f"{EXP}/decode_glow_tts_mini_use_teacher_forcingtrue_train.loss.ave"

TINY = """\
tts: glow_tts
tts_conf:
    hidden_channels: 16
    filter_channels: 32
    num_encoder_layers: 1
    duration_filter_channels: 16
    decoder_hidden_channels: 16
    num_flow_blocks: 2
    num_coupling_layers: 1
feats_extract: fbank
feats_extract_conf: {fs: 22050, n_fft: 1024, hop_length: 256, win_length: 1024,
                     n_mels: 80, fmin: 80, fmax: 7600}
normalize: global_mvn
optim: adam
optim_conf: {lr: 1.0e-3, betas: [0.9, 0.98], eps: 1.0e-9}
scheduler: warmuplr
scheduler_conf: {warmup_steps: 10}
num_iters_per_epoch: 2
max_epoch: 4
batch_type: sorted
batch_size: 3
num_workers: 0
keep_nbest_models: 1
num_att_plot: 0
use_matplotlib: false
best_model_criterion: [[valid, loss, min], [train, loss, min]]
"""
# ESPnet's FastSpeech2 with token-averaged pitch and energy, tiny: a student of the teacher dump.
TINY_FS2 = """\
tts: fastspeech2
tts_conf: {adim: 16, aheads: 2, elayers: 1, eunits: 32, dlayers: 1, dunits: 32,
           duration_predictor_layers: 1, duration_predictor_chans: 16,
           pitch_predictor_layers: 1, pitch_predictor_chans: 16,
           energy_predictor_layers: 1, energy_predictor_chans: 16, postnet_layers: 0,
           reduction_factor: 1}
feats_extract: fbank
normalize: global_mvn
pitch_extract: dio
pitch_extract_conf: {reduction_factor: 1}
pitch_normalize: global_mvn
energy_extract: energy
energy_extract_conf: {reduction_factor: 1}
energy_normalize: global_mvn
optim: adam
num_iters_per_epoch: 2
max_epoch: 1
batch_type: sorted
batch_size: 3
num_workers: 0
num_att_plot: 0
best_model_criterion: [[train, loss, min]]
"""
ARGS = [
    "--corpus",
    "espeak",
    "--max_sentences",
    "9",
    "--num_dev",
    "2",
    "--num_eval",
    "2",
    "--train_config",
    "conf/tiny.yaml",
    "--nj",
    "1",
    "--inference_nj",
    "1",
    "--score_seeds",
    "2",
]
FITTED = f"{EXP}/train.loss.ave.pth"  # stage 6d's output, read by stages 7 and 8
UNFITTED = f"{EXP}/train.loss.ave.unfitted.pth"  # ESPnet's average, kept by stage 6d
PRETRAINED = f"{EXP}/4epoch.pth"
FINETUNED = (
    f"{EXP}_init_param{PRETRAINED.replace('/', '_')}"  # ESPnet's tag + train_args
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"
    ),
]


def env():
    e = dict(os.environ)
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e['PATH']}"
    return e


def run(recipe: Path, *args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["./run.sh", *ARGS, *args],
        cwd=recipe,
        env=env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=900,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"run.sh {' '.join(args)} failed:\n{proc.stdout[-4000:]}")
    return proc


def snapshot(recipe: Path) -> dict:
    return {
        str(p.relative_to(recipe)): (p.stat().st_size, p.stat().st_mtime_ns)
        for d in ("data", "dump", "exp", "corpus")
        for p in (recipe / d).rglob("*")
        if p.is_file()
    }


def copy_recipe(root: Path) -> Path:
    """A copy of the recipe at ``root`` (links resolved), without any run's outputs."""
    shutil.copytree(
        RECIPE,
        root,
        symlinks=False,
        ignore=shutil.ignore_patterns("data", "dump", "exp", "corpus", "downloads"),
    )
    return root


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """A finished recipe run, with what happened on the way."""
    root = tmp_path_factory.mktemp("recipe") / "tts_glow"
    copy_recipe(root)
    (root / "conf" / "tiny.yaml").write_text(TINY)
    (root / "conf" / "tiny_fs2.yaml").write_text(TINY_FS2)
    info = {"root": root}
    info["prep"] = run(root, "--stop_stage", "5").stdout

    # Stage 6, killed once its first checkpoint is written, then run again.
    proc = subprocess.Popen(
        ["./run.sh", *ARGS, "--stage", "6", "--stop_stage", "6"],
        cwd=root,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    ckpt, deadline = root / EXP / "checkpoint.pth", time.time() + 600
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    info["killed_while_running"] = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    info["epochs_before_kill"] = sorted(p.name for p in (root / EXP).glob("*epoch.pth"))
    info["resume"] = run(root, "--stage", "6", "--stop_stage", "6").stdout
    info["rest"] = run(root, "--stage", "7").stdout

    # Teacher forcing: a teacher dump, then an ESPnet FastSpeech2 through the same tts.sh.
    info["teacher"] = run(
        root,
        "--stage",
        "7",
        "--stop_stage",
        "7",
        "--inference_args",
        "--use_teacher_forcing true",
    ).stdout
    info["student"] = run(
        root,
        "--stage",
        "5",
        "--stop_stage",
        "6",
        "--train_config",
        "conf/tiny_fs2.yaml",
        "--teacher_dumpdir",
        TEACHER,
        "--tts_stats_dir",
        "exp/tts_stats_fs2",
    ).stdout
    # Fine-tuning from the trained model, in two CPU processes (DDP over gloo).
    info["finetune"] = run(
        root,
        "--stage",
        "6",
        "--stop_stage",
        "6",
        "--pretrained_model",
        PRETRAINED,
        "--cpu_procs",
        "2",
    ).stdout
    return info


def test_data_stages(recipe):
    root = recipe["root"]
    for s, n in (("tr_no_dev", 5), ("dev", 2), ("eval1", 2)):
        assert len((root / "data" / s / "text").read_text().splitlines()) == n
    for s in ("tr_no_dev", "dev"):
        for name in ("wav.scp", "text", "utt2num_samples"):
            assert (root / "dump/raw" / s / name).is_file()
    assert (root / "dump/raw/eval1/wav.scp").is_file()
    assert "kept 5 of 5 utterances" in recipe["prep"]
    assert "stage 2+" not in recipe["prep"]  # one speaker: no ids, no x-vectors
    tokens = (root / f"dump/token_list/{TOKENS}/tokens.txt").read_text().split()
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    stats = root / f"exp/tts_stats_raw_{TOKENS}/train"
    assert (stats / "feats_stats.npz").is_file() and (
        stats / "text_shape.phn"
    ).is_file()


def test_killed_training_resumes_from_its_checkpoint(recipe):
    assert recipe["killed_while_running"], "training finished before it could be killed"
    assert "4epoch.pth" not in recipe["epochs_before_kill"]
    assert "stage 6: resuming from" in recipe["resume"]
    log = (recipe["root"] / EXP / "train.log").read_text()
    assert "The training was resumed using" in log
    assert "1/4epoch started" not in log  # the first epoch is not trained again
    assert (recipe["root"] / EXP / "4epoch.pth").is_file()


def test_training_curves_are_drawn_once_after_training(recipe, tmp_path):
    """The config turns ESPnet's per-epoch plots off (as the mini config does); stage 6
    draws the same curves from the reporter state in checkpoint.pth after the last epoch.
    """
    from glowtts_recipe import plot_training
    from glowtts_recipe.datadir import DataError

    images = recipe["root"] / EXP / "images"
    pngs = list(images.glob("*.png"))
    assert {"loss.png", "mle_loss.png", "duration_loss.png"} <= {p.name for p in pngs}
    last_epoch = (recipe["root"] / EXP / "4epoch.pth").stat().st_mtime
    assert all(p.stat().st_size > 0 and p.stat().st_mtime >= last_epoch for p in pngs)
    with pytest.raises(DataError, match="checkpoint.pth: missing"):
        plot_training.plot_training(tmp_path)


def _state(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def test_duration_predictor_is_fitted_to_the_final_alignments(recipe):
    import re

    root = recipe["root"]
    model, unfitted = root / FITTED, root / UNFITTED
    assert "stage 6d: duration loss on" in recipe["resume"]
    assert not model.is_symlink() and unfitted.is_symlink()  # ESPnet's average, kept
    log = (root / EXP / "fit_durations.log").read_text()
    before, after = map(
        float, re.search(r"([0-9.]+) before, ([0-9.]+) after", log).groups()
    )
    assert after < 0.9 * before
    fitted, trained = _state(model), _state(unfitted)
    assert fitted.keys() == trained.keys()
    predictor = [k for k in fitted if k.startswith("tts.duration_predictor.")]
    assert predictor and any(not fitted[k].equal(trained[k]) for k in predictor)
    for k in fitted.keys() - set(predictor):  # encoder, flows, statistics: untouched
        assert fitted[k].equal(trained[k]), k
    assert "stage 6d: not a glow_tts model" in recipe["student"]


def test_fit_durations_names_what_is_wrong(recipe, tmp_path, monkeypatch):
    from espnet_glowtts.bin import fit_durations

    exp = recipe["root"] / EXP
    args = [
        "--train_config",
        str(exp / "config.yaml"),
        "--out",
        str(tmp_path / "x.pth"),
    ]
    with pytest.raises(FileNotFoundError, match="nope.pth: no such file"):
        fit_durations.main([*args, "--model_file", str(exp / "nope.pth")])
    model = ["--model_file", str(recipe["root"] / FITTED)]
    with pytest.raises(ValueError, match="--steps"):
        fit_durations.main([*args, *model, "--steps", "0"])
    monkeypatch.chdir(tmp_path)  # the config's data paths are relative to the recipe
    with pytest.raises(
        FileNotFoundError, match="dump/raw/tr_no_dev/text, which is not"
    ):
        fit_durations.main([*args, *model])
    student = next((recipe["root"] / "exp").glob("tts_tiny_fs2*/config.yaml"))
    with pytest.raises(ValueError, match="the model is fastspeech2, not glow_tts"):
        fit_durations.main(["--train_config", str(student), *model, "--out", "x.pth"])
    assert not (tmp_path / "x.pth").exists()


def test_decoding_outputs(recipe):
    root = recipe["root"]
    for s in ("dev", "eval1"):
        d = root / DECODE / s
        utts = [
            line.split()[0]
            for line in (root / "dump/raw" / s / "text").read_text().splitlines()
        ]
        for u in utts:
            info = sf.info(str(d / "wav" / f"{u}.wav"))
            assert info.samplerate == 22050 and info.frames > 0
            assert (d / "images" / f"{u}.png").stat().st_size > 0
        for part in ("norm", "denorm"):
            assert len((d / part / "feats.scp").read_text().splitlines()) == len(utts)
        # ESPnet's layout: durations and speech_shape are plain files; draw 2 beside draw 1
        durations = (d / "durations").read_text().splitlines()
        assert [x.split()[0] for x in durations] == sorted(utts)
        assert all(int(v) >= 1 for x in durations for v in x.split()[1:])
        shapes = dict(x.split() for x in (d / "speech_shape").read_text().splitlines())
        assert sorted(shapes) == sorted(utts)
        assert all(
            sum(int(v) for v in x.split()[1:])
            == int(shapes[x.split()[0]].split(",")[0])
            for x in durations
        )
        for u in utts:  # a second draw (--seed 2) of the same durations: other noise
            first, second = (
                sf.read(str(d / w / f"{u}.wav"))[0] for w in ("wav", "wav_seed2")
            )
            assert len(second) == len(first) and not np.allclose(first, second)
        assert len((d / "wav_seed2" / "wav.scp").read_text().splitlines()) == len(utts)
        assert not (d / "wav_seed3").exists()
        import json

        assert json.loads((d / "rtf.json").read_text())["rtf"] > 0
    assert (root / DECODE / "stages" / "7.done").is_file()
    assert (root / DECODE / "stages" / "7.score.done").is_file()


def test_scoring_outputs(recipe):
    import json

    d = recipe["root"] / DECODE
    for s in ("dev", "eval1"):
        scores = json.loads((d / s / "scores.json").read_text())
        assert scores["systems"]["synthesis"]["mcd"] > 0
        assert (
            scores["systems"]["reference_vocoded"]["mcd"]
            < scores["systems"]["synthesis"]["mcd"]
        )
        table = (d / s / "scores.md").read_text()
        assert "| synthesis (Glow-TTS) |" in table
        # CER/WER are there, or the table says why not; never silently missing.
        assert ("CER ratio" in table) or ("CER/WER not computed" in table)


def test_packed_model_loads_and_speaks(recipe):
    from espnet2.bin.tts_inference import Text2Speech
    from espnet_model_zoo.downloader import ModelDownloader

    import espnet_glowtts  # noqa: F401  (registers glow_tts)

    root = recipe["root"]
    zip_path = root / EXP / f"{Path(EXP).name}_train.loss.ave.zip"  # ESPnet's name
    assert (root / EXP / "packed_check.wav").is_file()
    tts = Text2Speech.from_pretrained(model_tag=str(zip_path))
    wav = tts("Hello from the packed model.")["wav"]
    assert wav.numel() > 1000
    unpacked = ModelDownloader(cachedir=str(root / "zoo")).download_and_unpack(
        str(zip_path)
    )
    tts = Text2Speech(**unpacked)
    out = tts("A second sentence.")
    assert out["wav"].numel() > 1000 and out["duration"].min() >= 1


def test_teacher_forcing_writes_a_teacher_dump_fastspeech2_trains_from(recipe):
    root = recipe["root"]
    assert (
        "stage 7: decoding tr_no_dev dev eval1" in recipe["teacher"]
    )  # train/valid too
    for s in ("tr_no_dev", "dev", "eval1"):
        texts = dict(
            line.split(" ", 1)
            for line in (root / "dump/raw" / s / "text").read_text().splitlines()
        )
        samples = dict(
            line.split()
            for line in (root / "dump/raw" / s / "utt2num_samples")
            .read_text()
            .splitlines()
        )
        lines = (root / TEACHER / s / "durations").read_text().splitlines()
        assert sorted(x.split()[0] for x in lines) == sorted(texts)
        for (
            line
        ) in lines:  # FastSpeech2's text_int: tokens + <sos/eos> (0), sum = frames
            utt, *d = line.split()
            d = [int(x) for x in d]
            assert d[-1] == 0 and min(d[:-1]) >= 0
            assert sum(d) == int(samples[utt]) // 256 + 1
    assert not (root / TEACHER / "stages" / "7.score.done").exists()
    # ESPnet's FastSpeech2 read it through tts.sh stages 5-6 (--teacher_dumpdir) and trained.
    student = root / f"exp/tts_tiny_fs2_raw_{TOKENS}"
    assert (root / "exp/tts_stats_fs2/train/pitch_stats.npz").is_file()
    assert (student / "1epoch.pth").is_file()
    log = (student / "train.log").read_text()
    assert f"{TEACHER}/tr_no_dev/durations,durations,text_int" in log
    assert "duration_loss=" in log


def test_fine_tuning_starts_a_new_experiment_in_two_cpu_processes(recipe):
    root = recipe["root"]
    out, exp = recipe["finetune"], root / FINETUNED
    assert f"initial weights from {PRETRAINED}" in out
    assert "2 CPU processes" in out
    assert (exp / "4epoch.pth").is_file() and (
        exp / "init_param"
    ).read_text().strip() == PRETRAINED
    log = (exp / "train.log").read_text()
    assert "The training was resumed" not in log  # a new run, not the old checkpoint
    assert (
        f"Loading pretrained params from {PRETRAINED}" in log
    )  # ESPnet's --init_param
    assert ":0/2] " in log  # ESPnet's log prefix: rank 0 of a world of 2 processes
    # The original experiment was not touched.
    assert (root / EXP / "init_param").read_text().strip() == ""


def test_help_and_one_line_errors(recipe):
    root = recipe["root"]

    def fails(*args) -> str:
        proc = run(root, *args, check=False)
        assert proc.returncode != 0, args
        errors = [x for x in proc.stdout.splitlines() if "ERROR" in x]
        assert len(errors) == 1, proc.stdout[-2000:]
        return errors[0]

    for script in ("./run.sh", "./tts.sh"):
        proc = subprocess.run(
            [script, "--help"],
            cwd=root,
            env=env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert proc.returncode == 0
        for option in (
            "--fmin",
            "--fmax",
            "--ngpu",
            "--teacher_dumpdir",
            "--vocoder_file",
        ):
            assert option in proc.stdout
    assert (
        "--num_speakers"
        in subprocess.run(
            ["./run.sh", "--help"],
            cwd=root,
            env=env(),
            text=True,
            stdout=subprocess.PIPE,
        ).stdout
    )
    assert "unknown option --no_such_option" in fails("--no_such_option", "1")
    assert "--feats_type fbank is not supported" in fails("--feats_type", "fbank")
    assert "--download_model x is not supported" in fails("--download_model", "x")
    assert "--vocoder_file nope.pkl not found" in fails(
        "--stage", "7", "--vocoder_file", "nope.pkl"
    )
    assert "needs a cluster" in fails("--stage", "6", "--num_nodes", "2")
    # A teacher dump that lacks an utterance of the training set.
    bad = root / "exp/bad_teacher"
    shutil.copytree(root / TEACHER, bad)
    lines = (bad / "tr_no_dev/durations").read_text().splitlines()
    (bad / "tr_no_dev/durations").write_text("\n".join(lines[1:]) + "\n")
    error = fails(
        "--stage",
        "5",
        "--stop_stage",
        "5",
        "--train_config",
        "conf/tiny_fs2.yaml",
        "--teacher_dumpdir",
        "exp/bad_teacher",
        "--tts_stats_dir",
        "exp/bad_stats",
    )
    assert "exp/bad_teacher/tr_no_dev/durations" in error and "1 missing" in error


def test_decoding_with_a_parallel_wavegan_vocoder(recipe):
    """./run.sh --vocoder_file X.pkl: a HiFi-GAN checkpoint of the parallel_wavegan package
    (random weights, its config.yml beside it) decodes and scores through stage 7."""
    import vocoder_checkpoints as checkpoints  # tests/vocoder_checkpoints.py

    root = recipe["root"]
    pkl = checkpoints.write_pwg_hifigan(root / "hifigan", fs=22050, hop=256, n_mels=80)
    run(
        root,
        "--stage",
        "7",
        "--stop_stage",
        "7",
        "--vocoder_file",
        str(pkl),
        "--inference_tag",
        "decode_hifigan",
        "--score_seeds",
        "1",
    )
    d = root / EXP / "decode_hifigan" / "eval1"
    shapes = dict(x.split() for x in (d / "speech_shape").read_text().splitlines())
    for utt, shape in shapes.items():
        info = sf.info(str(d / "wav" / f"{utt}.wav"))
        assert info.samplerate == 22050
        assert (
            info.frames == int(shape.split(",")[0]) * 256
        )  # HiFi-GAN: 256 samples a frame
    assert (d / "scores.json").is_file()


def test_onnx_export_stage_speaks_without_torch(recipe):
    """--export_onnx true: stage 8x exports the packed model and the runtime speaks."""
    root = recipe["root"]
    out = run(root, "--stage", "8", "--stop_stage", "8", "--export_onnx", "true").stdout
    assert "stage 8x: ONNX export" in out
    onnx_dir = root / EXP / "onnx"
    assert (onnx_dir / "config.json").is_file() and (
        root / EXP / "stages/8.export.done"
    ).is_file()
    wav, fs = sf.read(str(root / EXP / "onnx_check.wav"))
    assert fs == 22050 and len(wav) > 0.3 * fs and np.abs(wav).max() > 0.01
    # The runtime's defaults are stage 7's decoding settings.
    decode = yaml.safe_load(
        (root / "conf/tuning/decode_glow_tts_mini.yaml").read_text()
    )
    defaults = json.loads((onnx_dir / "config.json").read_text())["defaults"]
    assert defaults == {k: decode[k] for k in ("noise_scale", "length_scale")}
    assert (
        "already done"
        in run(
            root, "--stage", "8", "--stop_stage", "8", "--export_onnx", "true"
        ).stdout
    )


def test_fit_durations_false_gives_back_the_trained_model(recipe):
    root = recipe["root"]
    model, fitted, trained = (
        root / FITTED,
        _state(root / FITTED),
        _state(root / UNFITTED),
    )
    out = run(
        root, "--stage", "6", "--stop_stage", "6", "--fit_durations", "false"
    ).stdout
    assert "stage 6d: not fitted" in out
    assert all(v.equal(trained[k]) for k, v in _state(model).items())
    run(root, "--stage", "6", "--stop_stage", "6")  # fitted again, as the seed fixes it
    assert all(v.equal(fitted[k]) for k, v in _state(model).items())


def test_rerun_of_finished_stages_changes_nothing(recipe):
    root = recipe["root"]
    before = snapshot(root)
    out = run(root).stdout
    for n in ("1", "2", "3", "4", "5", "6", "6d", "7", "7s", "8"):
        assert f"stage {n}: " in out
    assert out.count("already done") == 10
    assert snapshot(root) == before
