"""Plug Glow-TTS into ESPnet2: the TTS task's model choices and Text2Speech's options.

ESPnet has no plugin entry points for espnet2 tasks, so registration happens when
``espnet_glowtts`` is imported. Processes that ESPnet spawns re-import only ``__main__``,
which is why the command-line wrappers in ``espnet_glowtts.bin`` import this package.
"""

import functools
import inspect
from typing import Optional

NAME = "glow_tts"


def register() -> None:
    """Register ``glow_tts`` in ESPnet's TTS task and extend Text2Speech (idempotent)."""
    from espnet2.tasks.tts import tts_choices

    from espnet_glowtts.glow_tts import GlowTTS

    tts_choices.classes[NAME] = GlowTTS
    _extend_text2speech()
    __import__("espnet_glowtts.long_text").long_text.extend_text2speech()


def _extend_text2speech() -> None:
    """Make Text2Speech hand Glow-TTS ``noise_scale`` and ``length_scale``.

    Text2Speech builds its decoding options per known model class; an unknown class gets
    only ``use_teacher_forcing``. After this, ``Text2Speech(..., noise_scale=...,
    length_scale=...)`` reaches a Glow-TTS model. ``speed_control_alpha``, ESPnet's
    duration multiplier for FastSpeech, is taken as ``length_scale`` when that is not given.
    A ``noise_scale`` not given leaves the model's default (0.333).
    """
    from espnet2.bin.tts_inference import Text2Speech

    if getattr(Text2Speech.__init__, "_glowtts_extended", False):
        return
    original = Text2Speech.__init__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self, *args, length_scale: Optional[float] = None, **kwargs):
        original(self, *args, **kwargs)
        from espnet_glowtts.glow_tts import GlowTTS

        if isinstance(self.tts, GlowTTS):
            bound = signature.bind(self, *args, **kwargs)
            given = set(bound.arguments)
            bound.apply_defaults()
            options = bound.arguments
            self.decode_conf.update(
                length_scale=(options["speed_control_alpha"] if length_scale is None
                              else length_scale))
            # Text2Speech's own default (0.667, for VITS) is not ours: without an explicit
            # noise_scale the model's default applies.
            if "noise_scale" in given:
                self.decode_conf.update(noise_scale=options["noise_scale"])

    __init__._glowtts_extended = True
    Text2Speech.__init__ = __init__
