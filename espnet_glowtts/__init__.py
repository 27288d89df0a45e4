"""Glow-TTS for ESPnet2.

Importing this package registers the model as ``glow_tts`` in ESPnet's TTS task and lets
``Text2Speech`` pass Glow-TTS its decoding options (``noise_scale``, ``length_scale``).
Without torch and espnet installed (the ONNX runtime's environment, see
``espnet_glowtts.runtime``) the package imports without the model and registers nothing.
"""

from importlib.util import find_spec

__version__ = "0.1.0"

if find_spec("torch") is not None and find_spec("espnet2") is not None:
    from espnet_glowtts.glow_tts import GlowTTS
    from espnet_glowtts.registration import register

    __all__ = ["GlowTTS", "register"]
    register()
else:
    __all__ = []
