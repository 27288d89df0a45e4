"""Long texts through ESPnet's Text2Speech: synthesized sentence by sentence.

The encoder's self-attention grows as T_text^2, so one pass over a whole chapter needs
tens of GB. After :func:`extend_text2speech`, ``Text2Speech`` of a Glow-TTS model splits a
text longer than ``max_chars`` (or any text, with ``split_sentences=True``) into sentences
(``espnet_glowtts.runtime.split_sentences``, the runtime's rule), synthesizes them one at a
time and concatenates the outputs: memory is bounded by the longest sentence and time is
linear in the length. Texts up to ``max_chars`` are synthesized in one pass, as before.
"""

import functools
from typing import Dict, Iterator, Optional

import torch

from espnet_glowtts.runtime.frontend import split_sentences

MAX_CHARS = 400  # longest piece synthesized at once (LJSpeech sentences are < 200)
JOINED = ("feat_gen", "feat_gen_denorm", "duration", "wav")


def iter_sentences(tts, text: str, **kwargs) -> Iterator[Dict[str, torch.Tensor]]:
    """Yield Text2Speech's output for each sentence of ``text`` (with its ``text``)."""
    for sentence in split_sentences(text, tts.glowtts_max_chars):
        yield dict(text=sentence, **tts.glowtts_call_one(sentence, **kwargs))


def extend_text2speech() -> None:
    """Add ``split_sentences`` and ``max_chars`` to Text2Speech (idempotent)."""
    from espnet2.bin.tts_inference import Text2Speech

    if getattr(Text2Speech.__call__, "_glowtts_long_text", False):
        return
    original_init, original_call = Text2Speech.__init__, Text2Speech.__call__

    @functools.wraps(original_init)
    def __init__(
        self,
        *args,
        split_sentences: Optional[bool] = None,
        max_chars: int = MAX_CHARS,
        **kwargs,
    ):
        original_init(self, *args, **kwargs)
        if max_chars <= 0:
            raise ValueError(f"max_chars must be positive, got {max_chars}")
        from espnet_glowtts.glow_tts import GlowTTS

        self.glowtts_split = split_sentences if isinstance(self.tts, GlowTTS) else False
        self.glowtts_max_chars = max_chars
        self.glowtts_call_one = functools.partial(original_call, self)

    @functools.wraps(original_call)
    def __call__(self, text, *args, **kwargs):
        split = getattr(self, "glowtts_split", False)
        # Speech or durations given for the whole text cannot be split with it.
        whole = (
            args
            or kwargs.get("speech") is not None
            or kwargs.get("durations") is not None
        )
        if (
            not isinstance(text, str)
            or whole
            or split is False
            or (split is None and len(text) <= self.glowtts_max_chars)
        ):
            return original_call(self, text, *args, **kwargs)
        parts = list(iter_sentences(self, text, **kwargs))
        if not parts:
            raise ValueError("text is empty: nothing to synthesize")
        return {
            key: torch.cat([p[key] for p in parts])
            for key in JOINED
            if parts[0].get(key) is not None
        }

    __call__._glowtts_long_text = True
    Text2Speech.__init__ = __init__
    Text2Speech.__call__ = __call__
