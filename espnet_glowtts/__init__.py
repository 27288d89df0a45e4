"""Glow-TTS for ESPnet2.

Importing this package registers the model as ``glow_tts`` in ESPnet's TTS task and lets
``Text2Speech`` pass Glow-TTS its decoding options (``noise_scale``, ``length_scale``).
"""

from espnet_glowtts.glow_tts import GlowTTS
from espnet_glowtts.registration import register

__all__ = ["GlowTTS", "register"]
__version__ = "0.1.0"

register()
