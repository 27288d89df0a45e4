# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""Glow-TTS for ESPnet2.

Importing this package registers the model as ``glow_tts`` in ESPnet's TTS task and lets
``Text2Speech`` pass Glow-TTS its decoding options (``noise_scale``, ``length_scale``).

Paper: Kim et al., "Glow-TTS: A Generative Flow for Text-to-Speech via Monotonic
Alignment Search", NeurIPS 2020. Implementation facts follow the authors'
github.com/jaywalnut310/glow-tts.

Where torch or espnet is not installed (the ONNX runtime's environment, see
``espnet_glowtts.runtime``) the package imports without the model and registers nothing.
"""

__version__ = "0.1.0"

try:
    import espnet2  # noqa: F401
    import torch  # noqa: F401
except ImportError as e:
    if e.name not in ("torch", "espnet2"):
        raise  # a broken install is an error, not a reason to skip
    __all__ = []
else:
    from espnet_glowtts.glow_tts import GlowTTS
    from espnet_glowtts.registration import register

    __all__ = ["GlowTTS", "register"]
    register()
