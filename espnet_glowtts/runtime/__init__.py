"""Torch-free Glow-TTS runtime: onnxruntime, numpy and the text front end.

Importing it never imports torch or espnet (``espnet_glowtts`` registers with ESPnet only
when both are installed). See ``python -m espnet_glowtts.runtime --help``.
"""

from espnet_glowtts.runtime.frontend import TextFrontend, split_sentences
from espnet_glowtts.runtime.synthesizer import (
    FORMAT,
    FORMAT_VERSION,
    ExportError,
    Synthesizer,
    load_config,
)

__all__ = [
    "ExportError",
    "FORMAT",
    "FORMAT_VERSION",
    "Synthesizer",
    "TextFrontend",
    "load_config",
    "split_sentences",
]
