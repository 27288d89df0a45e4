"""Neural vocoders on ESPnet's own route, with checks that name the file at fault.

ESPnet's ``TTSTask.build_vocoder_from_file`` (behind ``Text2Speech(vocoder_file=...)`` and
``tts_inference --vocoder_file``) loads a ``parallel_wavegan`` checkpoint (``.pkl``) with the
``config.yml`` beside it, and nothing else. Registration wraps it so that:

* a missing file, a missing or foreign config, and a vocoder whose sampling rate, hop or mel
  settings differ from the TTS model's features each raise a one-line error naming the file;
* a vocoder that ESPnet trained loads too: the vocoder half of a GAN-TTS ``joint_text2wav``
  experiment (``.pth`` with its ``config.yaml`` beside it, as ESPnet writes them).
"""

import functools
import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
import yaml
from typeguard import typechecked

PathLike = Union[Path, str]

# parallel_wavegan's config.yml names -> ESPnet's feats_extract.get_parameters() names
PWG_FEATURE_KEYS = dict(
    sampling_rate="fs",
    hop_size="n_shift",
    num_mels="n_mels",
    fmin="fmin",
    fmax="fmax",
    fft_size="n_fft",
    win_length="win_length",
)
# the settings a vocoder must share with the features it is given
CHECKED = ("fs", "n_shift", "n_mels", "fmin", "fmax", "n_fft", "win_length")


def vocoder_config_path(
    vocoder_file: PathLike, vocoder_config: Optional[PathLike] = None
) -> Path:
    """The vocoder's config: the one given, else the one ESPnet looks for beside the file.

    ``parallel_wavegan`` checkpoints (``.pkl``) keep ``config.yml`` beside them; ESPnet's
    experiments (``.pth``) keep ``config.yaml``.
    """
    if vocoder_config is not None:
        return Path(vocoder_config)
    name = "config.yml" if str(vocoder_file).endswith(".pkl") else "config.yaml"
    return Path(os.path.dirname(str(vocoder_file)) or ".") / name


def _load_yaml(path: Path, vocoder_file: PathLike) -> dict:
    if not path.is_file():
        raise FileNotFoundError(
            f"vocoder {vocoder_file}: its config {path} does not exist (keep the vocoder's "
            "config beside it, or pass --vocoder_config)"
        )
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    if not isinstance(conf, dict):
        raise ValueError(f"vocoder config {path}: not a YAML mapping")
    return conf


def pwg_feature_params(conf: dict, config_path: PathLike) -> Dict[str, Any]:
    """Feature settings of a parallel_wavegan ``config.yml``, in ESPnet's names."""
    missing = [
        k for k in ("sampling_rate", "hop_size", "generator_params") if k not in conf
    ]
    if missing:
        raise ValueError(
            f"vocoder config {config_path}: no {', '.join(missing)}: not a "
            "parallel_wavegan config.yml (a Griffin-Lim config is not a vocoder "
            "config: leave --vocoder_config out to use the one beside the file)"
        )
    return {
        ours: conf[theirs]
        for theirs, ours in PWG_FEATURE_KEYS.items()
        if theirs in conf
    }


def _canonical(params: Dict[str, Any]) -> Dict[str, Any]:
    """Fill the defaults that both toolkits apply (fmin 0, fmax fs/2, window n_fft)."""
    out = dict(params)
    if out.get("fmin", 0) is None:
        out["fmin"] = 0
    if "fs" in out and out.get("fmax", 0) is None:
        out["fmax"] = out["fs"] / 2
    if "n_fft" in out and out.get("win_length", 0) is None:
        out["win_length"] = out["n_fft"]
    return out


def check_features(
    vocoder_params: Dict[str, Any], feats_params: Dict[str, Any], where: PathLike
) -> None:
    """Raise a one-line ValueError when the vocoder expects other features than the model's.

    Args:
        vocoder_params: The vocoder's feature settings (ESPnet names, e.g. ``fs``).
        feats_params: ``feats_extract.get_parameters()`` of the TTS model.
        where: The vocoder config, named in the error.
    """
    voc, feats = _canonical(vocoder_params), _canonical(feats_params)
    diffs = [
        f"{k} {voc[k]} (vocoder) != {feats[k]} (TTS features)"
        for k in CHECKED
        if k in voc and k in feats and float(voc[k]) != float(feats[k])
    ]
    if diffs:
        raise ValueError(
            f"vocoder config {where} does not match the TTS model's features: "
            + ", ".join(diffs)
        )


class ESPnetJointVocoder(torch.nn.Module):
    """The vocoder of an ESPnet GAN-TTS ``joint_text2wav`` model, as a mel-to-wav module.

    It takes denormalised features, as Text2Speech gives every vocoder, and normalises them
    with the joint model's own statistics, since its vocoder was trained on the text2mel
    output in that space.

    Args:
        model_file: The experiment's ``.pth``.
        config_file: Its ``config.yaml`` (``tts: joint_text2wav``).
    """

    @typechecked
    def __init__(self, model_file: PathLike, config_file: PathLike):
        super().__init__()
        from espnet2.tasks.gan_tts import GANTTSTask

        model, _ = GANTTSTask.build_model_from_file(config_file, model_file, "cpu")
        self.generator = model.tts.generator["vocoder"]
        if hasattr(self.generator, "remove_weight_norm"):
            self.generator.remove_weight_norm()
        self.normalize = model.normalize
        self.pqmf = model.tts.pqmf if getattr(model.tts, "use_pqmf", False) else None
        self.feats_params = model.feats_extract.get_parameters()
        self.fs = self.feats_params["fs"]

    @torch.no_grad()
    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Waveform (T_wav,) of denormalised features (T_feats, n_mels)."""
        if self.normalize is not None:
            feats = self.normalize(feats[None], feats.new_tensor([len(feats)]).long())[
                0
            ][0]
        wav = self.generator.inference(feats)
        if self.pqmf is not None:
            wav = self.pqmf.synthesis(wav.unsqueeze(0).transpose(1, 2)).squeeze(0).T
        return wav.view(-1)


def _espnet_vocoder(vocoder_file: PathLike, config_path: Path) -> ESPnetJointVocoder:
    conf = _load_yaml(config_path, vocoder_file)
    if conf.get("tts") != "joint_text2wav":
        raise ValueError(
            f"vocoder {vocoder_file}: {config_path} is a '{conf.get('tts')}' "
            "experiment, not an ESPnet GAN-TTS joint_text2wav model with a "
            "mel vocoder"
        )
    return ESPnetJointVocoder(vocoder_file, config_path)


def _import_parallel_wavegan(vocoder_file: PathLike) -> None:
    try:
        import parallel_wavegan.models  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"vocoder {vocoder_file} needs the parallel_wavegan package ({e}): "
            "pip install --no-build-isolation parallel-wavegan==0.6.1"
        ) from e


def wrap_build_vocoder_from_file(original):
    """``TTSTask.build_vocoder_from_file`` with the checks and ESPnet-trained vocoders."""

    @functools.wraps(original)
    def build_vocoder_from_file(
        vocoder_config_file=None, vocoder_file=None, model=None, device="cpu"
    ):
        if vocoder_file is None:  # Griffin-Lim: ESPnet's own path
            return original(vocoder_config_file, vocoder_file, model, device)
        if not Path(vocoder_file).is_file():
            raise FileNotFoundError(f"vocoder file {vocoder_file} does not exist")
        config_path = vocoder_config_path(vocoder_file, vocoder_config_file)
        feats_extract = getattr(model, "feats_extract", None)
        if str(vocoder_file).endswith(".pkl"):
            params = pwg_feature_params(
                _load_yaml(config_path, vocoder_file), config_path
            )
            if feats_extract is not None:
                check_features(params, feats_extract.get_parameters(), config_path)
            _import_parallel_wavegan(vocoder_file)
            return original(str(config_path), vocoder_file, model, device)
        if str(vocoder_file).endswith(".pth"):
            vocoder = _espnet_vocoder(vocoder_file, config_path)
            if feats_extract is not None:
                check_features(
                    vocoder.feats_params, feats_extract.get_parameters(), config_path
                )
            return vocoder.to(device)
        raise ValueError(
            f"vocoder file {vocoder_file}: unknown format: expected a parallel_wavegan "
            "checkpoint (.pkl, config.yml beside it) or an ESPnet joint_text2wav model "
            "(.pth, config.yaml beside it)"
        )

    build_vocoder_from_file._glowtts_wrapped = True
    return build_vocoder_from_file
