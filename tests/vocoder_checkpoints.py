"""Vocoder checkpoints with random weights, written as the vocoder toolkits write them.

    from vocoder_checkpoints import write_pwg_hifigan
    pkl = write_pwg_hifigan(tmp_path / "hifigan", fs=22050, hop=256, n_mels=80)
    Text2Speech(train_config, model_file, vocoder_file=pkl)  # or ./run.sh --vocoder_file pkl

pytest puts ``tests/`` on ``sys.path``, so any test module can import this one.
"""

from pathlib import Path
from typing import List, Optional

import torch
import yaml


def _upsample_scales(hop: int) -> List[int]:
    """Factors of ``hop`` (each 2..8) whose product is ``hop``, largest first."""
    scales, rest = [], hop
    while rest > 1:
        factor = next((f for f in range(8, 1, -1) if rest % f == 0), None)
        if factor is None:
            raise ValueError(f"hop {hop} is not a product of factors 2..8")
        scales.append(factor)
        rest //= factor
    return scales


def write_pwg_hifigan(
    out_dir: Path,
    fs: int = 22050,
    hop: int = 256,
    n_mels: int = 80,
    n_fft: int = 1024,
    win_length: Optional[int] = None,
    fmin: int = 80,
    fmax: int = 7600,
    channels: int = 16,
    seed: int = 0,
) -> Path:
    """A small HiFi-GAN generator with random weights as a parallel_wavegan checkpoint.

    Writes ``<out_dir>/checkpoint-0steps.pkl`` (``{"model": {"generator": state_dict}}``)
    and ``<out_dir>/config.yml`` beside it, with the feature settings that ESPnet's loader
    and our checks read. Returns the checkpoint's path.
    """
    from parallel_wavegan.models import HiFiGANGenerator

    import espnet_glowtts  # noqa: F401  (its registration lets parallel_wavegan import)

    scales = _upsample_scales(hop)
    params = dict(
        in_channels=n_mels,
        out_channels=1,
        channels=channels,
        kernel_size=7,
        upsample_scales=scales,
        upsample_kernel_sizes=[2 * s for s in scales],
        resblock_kernel_sizes=[3],
        resblock_dilations=[[1, 3]],
    )
    torch.manual_seed(seed)
    generator = HiFiGANGenerator(**params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "checkpoint-0steps.pkl"
    torch.save({"model": {"generator": generator.state_dict()}}, path)
    config = dict(
        sampling_rate=fs,
        fft_size=n_fft,
        hop_size=hop,
        win_length=win_length,
        window="hann",
        num_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        format="npy",
        generator_type="HiFiGANGenerator",
        generator_params=params,
    )
    (out_dir / "config.yml").write_text(yaml.safe_dump(config))
    return path


def write_espnet_joint_hifigan(
    out_dir: Path,
    stats_file: Path,
    fs: int = 22050,
    hop: int = 256,
    n_mels: int = 80,
    n_fft: int = 1024,
    fmin: int = 80,
    fmax: int = 7600,
    seed: int = 0,
) -> Path:
    """A tiny ESPnet GAN-TTS ``joint_text2wav`` experiment (FastSpeech + HiFi-GAN).

    Its weights are random; it is laid out as ESPnet's training writes it:
    ``<out_dir>/config.yaml`` and ``<out_dir>/1epoch.pth`` (returned). ``stats_file`` is the
    ``feats_stats.npz`` of its global MVN (written here with zero mean, unit variance when
    it does not exist).
    """
    import numpy as np
    from espnet2.tasks.gan_tts import GANTTSTask

    out_dir, stats_file = Path(out_dir), Path(stats_file)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not stats_file.exists():
        np.savez(
            stats_file,
            count=np.array(1.0),
            sum=np.zeros(n_mels),
            sum_square=np.ones(n_mels),
        )
    scales = _upsample_scales(hop)
    config = dict(
        token_list=["<blank>", "<unk>", "a", "b", "<sos/eos>"],
        odim=None,
        feats_extract="fbank",
        feats_extract_conf=dict(
            fs=fs, n_fft=n_fft, hop_length=hop, n_mels=n_mels, fmin=fmin, fmax=fmax
        ),
        normalize="global_mvn",
        normalize_conf=dict(stats_file=str(stats_file)),
        tts="joint_text2wav",
        tts_conf=dict(
            segment_size=4,
            sampling_rate=fs,
            text2mel_type="fastspeech",
            text2mel_params=dict(
                adim=8,
                aheads=2,
                elayers=1,
                eunits=8,
                dlayers=1,
                dunits=8,
                postnet_layers=0,
                duration_predictor_layers=1,
                duration_predictor_chans=8,
            ),
            vocoder_type="hifigan_generator",
            vocoder_params=dict(
                out_channels=1,
                channels=16,
                global_channels=-1,
                kernel_size=7,
                upsample_scales=scales,
                upsample_kernel_sizes=[2 * s for s in scales],
                resblock_kernel_sizes=[3],
                resblock_dilations=[[1, 3]],
            ),
            discriminator_type="hifigan_scale_discriminator",
            discriminator_params=dict(
                channels=4,
                max_downsample_channels=8,
                max_groups=2,
                downsample_scales=[2, 1],
            ),
        ),
        pitch_extract=None,
        energy_extract=None,
        pitch_normalize=None,
        energy_normalize=None,
        model_conf={},
    )
    config_path = out_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    torch.manual_seed(seed)
    model, _ = GANTTSTask.build_model_from_file(config_path, None, "cpu")
    path = out_dir / "1epoch.pth"
    torch.save(model.state_dict(), path)
    return path
