# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

r"""ESPnet's ``espnet2.bin.tts_inference`` with ``glow_tts`` registered.

Adds ``--length_scale`` (duration multiplier) to ESPnet's options, so a decode yaml can
hold ``noise_scale`` and ``length_scale`` for Glow-TTS, and ``--cuda_graphs`` (with
``--ngpu 1``: inference replayed as CUDA graphs, ``GlowTTS.enable_cuda_graphs``).

Usage (ESPnet's ``tts_inference`` options; ``--help`` lists them; ``tts.sh`` stage 8
shows the complete command)::

    python -m espnet_glowtts.bin.tts_inference \
        --model_file exp/tts_train/train.loss.ave.pth \
        --train_config exp/tts_train/config.yaml \
        --data_path_and_name_and_type dump/raw/eval1/text,text,text \
        --output_dir exp/tts_train/decode --noise_scale 0.333 --length_scale 1.0
"""

import sys
from typing import List, Optional

from espnet2.bin import tts_inference as espnet_inference
from espnet2.utils.types import str2bool

import espnet_glowtts  # noqa: F401  (registers glow_tts, extends Text2Speech)


def get_parser():
    """ESPnet's ``tts_inference`` parser plus ``--length_scale`` and ``--cuda_graphs``.

    Returns:
        argparse.ArgumentParser: The parser.

    """
    parser = espnet_inference.get_parser()
    parser.add_argument(
        "--length_scale",
        type=float,
        default=None,
        help="Glow-TTS duration multiplier (> 1 is slower); defaults to "
        "--speed_control_alpha",
    )
    parser.add_argument(
        "--cuda_graphs",
        type=str2bool,
        default=False,
        help="Replay Glow-TTS inference as CUDA graphs (needs --ngpu 1)",
    )
    return parser


def main(cmd: Optional[List[str]] = None):
    """Parse the command line and run ESPnet's ``inference``.

    Args:
        cmd (Optional[List[str]]): Arguments; ``sys.argv[1:]`` when None.

    Raises:
        ValueError: If ``--length_scale`` and ``--speed_control_alpha`` disagree.

    """
    print(espnet_inference.get_commandline_args(), file=sys.stderr)
    args = get_parser().parse_args(cmd)
    kwargs = vars(args)
    kwargs.pop("config", None)
    length_scale = kwargs.pop("length_scale")
    if kwargs.pop("cuda_graphs"):
        if kwargs["ngpu"] < 1:
            raise ValueError("--cuda_graphs true needs --ngpu 1")
        _build_with_cuda_graphs()
    if length_scale is not None:
        if kwargs["speed_control_alpha"] not in (1.0, length_scale):
            raise ValueError(
                f"--length_scale {length_scale} and --speed_control_alpha "
                f"{kwargs['speed_control_alpha']} disagree: give one of them"
            )
        # ESPnet's inference() takes no length_scale; Text2Speech maps this onto it.
        kwargs["speed_control_alpha"] = length_scale
    espnet_inference.inference(**kwargs)


def _build_with_cuda_graphs() -> None:
    """Make ESPnet's ``inference`` build its Text2Speech with ``cuda_graphs=True``."""
    base = espnet_inference.Text2Speech

    class Text2SpeechWithGraphs(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, cuda_graphs=True, **kwargs)

    espnet_inference.Text2Speech = Text2SpeechWithGraphs


if __name__ == "__main__":
    main()
