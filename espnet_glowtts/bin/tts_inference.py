# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""ESPnet's ``espnet2.bin.tts_inference`` with ``glow_tts`` registered.

Adds ``--length_scale`` (duration multiplier) to ESPnet's options, so a decode yaml can
hold ``noise_scale`` and ``length_scale`` for Glow-TTS.
"""

import sys
from typing import List, Optional

import espnet_glowtts  # noqa: F401  (registers glow_tts, extends Text2Speech)
from espnet2.bin import tts_inference as espnet_inference


def get_parser():
    parser = espnet_inference.get_parser()
    parser.add_argument(
        "--length_scale", type=float, default=None,
        help="Glow-TTS duration multiplier (> 1 is slower); defaults to "
             "--speed_control_alpha",
    )
    return parser


def main(cmd: Optional[List[str]] = None):
    print(espnet_inference.get_commandline_args(), file=sys.stderr)
    args = get_parser().parse_args(cmd)
    kwargs = vars(args)
    kwargs.pop("config", None)
    length_scale = kwargs.pop("length_scale")
    if length_scale is not None:
        if kwargs["speed_control_alpha"] not in (1.0, length_scale):
            raise ValueError(
                f"--length_scale {length_scale} and --speed_control_alpha "
                f"{kwargs['speed_control_alpha']} disagree: give one of them")
        # ESPnet's inference() takes no length_scale; Text2Speech maps this onto it.
        kwargs["speed_control_alpha"] = length_scale
    espnet_inference.inference(**kwargs)


if __name__ == "__main__":
    main()
