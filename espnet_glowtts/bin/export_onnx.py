"""Export a trained Glow-TTS model for the torch-free runtime (``espnet_glowtts.runtime``).

    python -m espnet_glowtts.bin.export_onnx --model_tag exp/tts/model.zip --out_dir onnx
    python -m espnet_glowtts.bin.export_onnx --model_tag exp/tts_train --out_dir onnx

``--model_tag`` is a packed zip (``espnet2.bin.pack``) or an experiment directory with
``config.yaml`` and a model ``.pth``. ``--out_dir`` gets ``encoder.onnx``, ``decoder.onnx``,
``config.json`` (front end, features, normalisation stats, vocoder, defaults) and
``README.txt``. It is written in a temporary directory and renamed into place only after the
export has spoken ``--check_text`` through the runtime and matched torch's features
(noise_scale=0) and durations on it.
"""

import argparse
import inspect
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
import yaml

import espnet_glowtts  # noqa: F401  (registers glow_tts)
from espnet_glowtts.export import export_graphs
from espnet_glowtts.glow_tts import GlowTTS
from espnet_glowtts.runtime.synthesizer import (
    CONFIG,
    FORMAT,
    FORMAT_VERSION,
    Synthesizer,
)

# Model files tts.sh may leave in an experiment directory, in order of preference.
MODEL_FILES = (
    "valid.loss.ave.pth",
    "train.loss.ave.pth",
    "valid.loss.best.pth",
    "train.loss.best.pth",
    "latest.pth",
)
CHECK_TOLERANCE = 1e-3  # max abs difference of the runtime's features from torch's

README = """Glow-TTS exported for onnxruntime ({name}); format {format} version {version}.

Run:  python -m espnet_glowtts.runtime --model_dir THIS_DIR --text "Hello." --out a.wav
      (or: from espnet_glowtts.runtime import Synthesizer; Synthesizer(THIS_DIR)(text))

encoder.onnx  one utterance, blanks interspersed when config.model.add_blank
  in:  text (1, T_text) int64; length_scale () float32{cond}
  out: mean, log_std (1, odim, T_text) float32 prior; durations (1, T_text) int64 frames
       per token, ceil(exp(logw) * length_scale), at least 1
numpy step: add frames to the last token up to a multiple of config.model.squeeze_factor,
  then repeat each token's mean/log_std over its frames -> mean_y, log_std_y
decoder.onnx  (flows inverted; weight norm and inverse 1x1 convs folded into constants)
  in:  mean_y, log_std_y, noise (1, odim, T_feats) float32, T_feats a multiple of the
       squeeze factor; noise_scale () float32{cond}
  out: feats (1, T_feats, odim) float32, normalised (global MVN)
denormalise: feats * config.normalize.std + config.normalize.mean  (log10 mel)
vocoder: config.vocoder (Griffin-Lim settings over config.features)
{int8}"""


def resolve_model(model_tag: str, model_file: Optional[str]) -> Tuple[Path, Path]:
    """(config.yaml, model .pth) of a packed zip or an experiment directory."""
    tag = Path(model_tag)
    if tag.is_file() and tag.suffix == ".zip":
        from espnet_model_zoo.downloader import ModelDownloader

        files = ModelDownloader().download_and_unpack(str(tag.resolve()))
        return Path(files["train_config"]), Path(model_file or files["model_file"])
    if not tag.is_dir():
        raise ValueError(
            f"--model_tag {model_tag}: neither a packed .zip nor a directory"
        )
    config = tag / "config.yaml"
    if not config.is_file():
        raise ValueError(f"--model_tag {model_tag}: no config.yaml in this directory")
    if model_file:
        return config, Path(model_file)
    for name in MODEL_FILES:
        if (tag / name).is_file():
            return config, tag / name
    found = sorted(tag.glob("*.pth"))
    if len(found) == 1:
        return config, found[0]
    raise ValueError(
        f"--model_tag {model_tag}: no model file among {', '.join(MODEL_FILES)}"
        f" ({len(found)} other .pth files): give --model_file"
    )


def runtime_config(
    espnet_model,
    train_args,
    noise_scale: Optional[float],
    length_scale: float,
    griffin_lim_iters: int,
) -> dict:
    """The config.json of an export: everything the runtime needs besides the graphs."""
    tts: GlowTTS = espnet_model.tts
    if not train_args.token_list:
        raise ValueError("the model's config has no token_list")
    if noise_scale is None:  # the model's own default
        noise_scale = (
            inspect.signature(GlowTTS.inference).parameters["noise_scale"].default
        )
    features = None
    if espnet_model.feats_extract is not None:
        p = espnet_model.feats_extract.get_parameters()
        features = {
            k: p.get(k)
            for k in (
                "fs",
                "n_fft",
                "n_shift",
                "win_length",
                "window",
                "n_mels",
                "fmin",
                "fmax",
            )
        }
        features["log_base"] = getattr(
            getattr(espnet_model.feats_extract, "logmel", None), "log_base", None
        )
    normalize = None
    if espnet_model.normalize is not None:
        mvn = espnet_model.normalize
        if not (mvn.norm_means and mvn.norm_vars):
            raise ValueError(
                "only global_mvn with norm_means and norm_vars is supported"
            )
        normalize = dict(
            type="global_mvn", mean=mvn.mean.tolist(), std=mvn.std.tolist()
        )
    g2p = getattr(train_args, "g2p", None)
    cleaner = getattr(train_args, "cleaner", None)
    return dict(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        token_list=list(train_args.token_list),
        token_type=train_args.token_type,
        cleaner=None if cleaner in (None, "none") else cleaner,
        g2p=None if g2p in (None, "none") else g2p,
        model=dict(
            add_blank=tts.add_blank,
            blank_id=tts.blank_id,
            odim=tts.odim,
            squeeze_factor=tts.squeeze_factor,
            spks=tts.spks,
            langs=tts.langs,
            spk_embed_dim=tts.spk_embed_dim,
        ),
        features=features,
        normalize=normalize,
        vocoder=(
            dict(type="griffin_lim", n_iter=griffin_lim_iters) if features else None
        ),
        defaults=dict(noise_scale=float(noise_scale), length_scale=float(length_scale)),
        graphs=dict(encoder="encoder.onnx", decoder="decoder.onnx"),
    )


def quantize(out_dir: Path, config: dict, model: GlowTTS) -> None:
    """int8 dynamic quantization of both graphs (``*.int8.onnx``).

    Quantized from the direct (4-D convolution) form: Winograd's transformed weights
    span a wider range than the weights, and one int8 scale per tensor lost them
    (paper model, random weights: 14 dB MCD from float32, against 1.5 dB direct).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    direct = out_dir / "direct"
    direct.mkdir()
    export_graphs(model, direct, winograd=False)
    for graph in ("encoder", "decoder"):
        name = f"{graph}.int8.onnx"
        quantize_dynamic(
            str(direct / f"{graph}.onnx"),
            str(out_dir / name),
            weight_type=QuantType.QInt8,
        )
        config["graphs"][f"{graph}_int8"] = name
    shutil.rmtree(direct)


def check(out_dir: Path, espnet_model, preprocess, text: str) -> float:
    """Speak ``text`` with the runtime; compare tokens, durations and features with torch.

    Returns:
        float: Max abs difference of the normalised features at noise_scale=0.

    """
    tts = Synthesizer(out_dir)
    ids = tts.frontend(text)
    expected = preprocess("<check>", dict(text=text))["text"]
    if not np.array_equal(ids, expected):
        raise RuntimeError(
            f"runtime front end gives token ids {ids.tolist()} for "
            f"{text!r}, ESPnet's preprocessing {list(expected)}"
        )
    model = tts.config["model"]
    cond = {k: 0 for k, count in (("sids", "spks"), ("lids", "langs")) if model[count]}
    spembs = None
    if model["spk_embed_dim"]:
        spembs = np.ones(model["spk_embed_dim"], dtype=np.float32)
    out = tts.synthesize_ids(ids, noise_scale=0.0, spembs=spembs, **cond)
    with torch.no_grad():
        ref = espnet_model.tts.inference(
            torch.as_tensor(ids),
            noise_scale=0.0,
            length_scale=tts.config["defaults"]["length_scale"],
            spembs=None if spembs is None else torch.as_tensor(spembs),
            **{k: torch.tensor([v]) for k, v in cond.items()},
        )
    if not np.array_equal(out["duration"], ref["duration"].numpy()):
        raise RuntimeError("runtime durations differ from torch's on the check text")
    diff = float(np.abs(out["feat_gen"] - ref["feat_gen"].numpy()).max())
    if diff > CHECK_TOLERANCE:
        raise RuntimeError(
            f"runtime features differ from torch's by {diff:.2e} "
            f"(> {CHECK_TOLERANCE}) on the check text"
        )
    if "wav" in out and not (len(out["wav"]) and np.isfinite(out["wav"]).all()):
        raise RuntimeError("the exported model produced no finite audio")
    return diff


def export(
    model_tag: str,
    out_dir: Path,
    model_file: Optional[str] = None,
    noise_scale: Optional[float] = None,
    length_scale: float = 1.0,
    griffin_lim_iters: int = 32,
    int8: bool = False,
    check_text: str = "This voice was exported to ONNX.",
    winograd: bool = True,
) -> dict:
    """Export ``model_tag`` into ``out_dir`` (atomically). Returns the written config."""
    from espnet2.tasks.tts import TTSTask

    config_file, model_path = resolve_model(model_tag, model_file)
    espnet_model, train_args = TTSTask.build_model_from_file(
        config_file, model_path, "cpu"
    )
    if not isinstance(espnet_model.tts, GlowTTS):
        raise ValueError(
            f"{model_tag} is a {type(espnet_model.tts).__name__} model, " "not glow_tts"
        )
    espnet_model.eval()
    config = runtime_config(
        espnet_model, train_args, noise_scale, length_scale, griffin_lim_iters
    )
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp.{out_dir.name}.", dir=out_dir.parent))
    try:
        inputs = export_graphs(espnet_model.tts, tmp, winograd)
        if int8:
            quantize(tmp, config, espnet_model.tts)
        (tmp / CONFIG).write_text(json.dumps(config, indent=1), encoding="utf-8")
        cond = "".join(f"; {n}" for n in inputs["encoder"][2:])
        (tmp / "README.txt").write_text(
            README.format(
                name=Path(model_tag).name,
                format=FORMAT,
                version=FORMAT_VERSION,
                cond=cond,
                int8=(
                    "int8 (dynamic quantization): encoder.int8.onnx, decoder.int8.onnx, "
                    "same inputs and outputs\n"
                    if int8
                    else ""
                ),
            ),
            encoding="utf-8",
        )
        preprocess = TTSTask.build_preprocess_fn(train_args, False)
        diff = check(tmp, espnet_model, preprocess, check_text)
        logging.info(
            f"check: {check_text!r} spoken; features within {diff:.1e} of torch"
        )
        # Swap in the checked export; an old one is moved aside first, never half-removed.
        old = tmp.with_name(f"{tmp.name}.old")
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return config


def main(cmd=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model_tag",
        required=True,
        help="packed model zip, or experiment dir (config.yaml + .pth)",
    )
    parser.add_argument(
        "--model_file", default=None, help="model .pth in --model_tag dir"
    )
    parser.add_argument("--out_dir", required=True)
    parser.add_argument(
        "--noise_scale",
        type=float,
        default=None,
        help="runtime default (default: the model's, 0.333)",
    )
    parser.add_argument(
        "--length_scale", type=float, default=1.0, help="runtime default"
    )
    parser.add_argument(
        "--vocoder_config",
        default=None,
        help="yaml with griffin_lim_iters (e.g. conf/griffin_lim.yaml)",
    )
    parser.add_argument("--griffin_lim_iters", type=int, default=32)
    parser.add_argument(
        "--quantize",
        type=lambda s: s.lower() in ("true", "1", "yes"),
        default=False,
        help="also write int8 graphs (true/false)",
    )
    parser.add_argument("--check_text", default="This voice was exported to ONNX.")
    parser.add_argument(
        "--winograd",
        type=lambda s: s.lower() in ("true", "1", "yes"),
        default=True,
        help="undilated couplings by Winograd's F(6, 5) (true/false; false: 4-D convs)",
    )
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    iters = args.griffin_lim_iters
    if args.vocoder_config:
        iters = int(
            yaml.safe_load(Path(args.vocoder_config).read_text()).get(
                "griffin_lim_iters", iters
            )
        )
    try:
        export(
            args.model_tag,
            Path(args.out_dir),
            args.model_file,
            args.noise_scale,
            args.length_scale,
            iters,
            args.quantize,
            args.check_text,
            args.winograd,
        )
    except (ValueError, RuntimeError, OSError) as e:
        sys.exit(f"export_onnx: error: {e}")
    print(f"{args.out_dir}: exported and checked", file=sys.stderr)


if __name__ == "__main__":
    main()
