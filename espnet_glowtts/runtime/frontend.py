"""Text -> token ids as ESPnet's preprocessing makes them, without torch or espnet.

ESPnet's ``CommonPreprocessor`` cleans the text (``TextCleaner``), tokenizes it
(``CharTokenizer`` or ``PhonemeTokenizer``) and maps unknown tokens to ``<unk>``. The tacotron
cleaner is the same function ESPnet calls (``tacotron_cleaner``, from espnet_tts_frontend);
the phonemizer settings of each supported g2p are those of ``espnet2.text.phoneme_tokenizer``.
"""

import logging
import re
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

SPACE = "<space>"

# g2p name -> phonemizer EspeakBackend arguments and ESPnet's Phonemizer options.
ESPEAK_G2P: Dict[str, dict] = {
    "espeak_ng_english_us_vits": dict(
        backend=dict(language="en-us", with_stress=True, preserve_punctuation=True),
        separator=dict(word=" ", phone=""),
        strip=True,
        single_tokens=True,
    ),
}
CLEANERS = ("tacotron",)
SENTENCE_END = re.compile(r"(?:(?<=[.!?;:])|(?<=[.!?;:][\"')\]]))\s+|\n\s*")


def _cleaner(name: Optional[str]) -> Callable[[str], str]:
    if name in (None, "none"):
        return lambda text: text
    if name == "tacotron":
        from tacotron_cleaner.cleaners import custom_english_cleaners

        return custom_english_cleaners
    raise ValueError(
        f"cleaner {name!r} is not supported by the runtime "
        f"(supported: {', '.join(CLEANERS)}, none)"
    )


def _phonemizer(name: str) -> Callable[[str], List[str]]:
    if name not in ESPEAK_G2P:
        raise ValueError(
            f"g2p {name!r} is not supported by the runtime "
            f"(supported: {', '.join(ESPEAK_G2P)})"
        )
    from phonemizer.backend import EspeakBackend
    from phonemizer.separator import Separator

    conf = ESPEAK_G2P[name]
    logger = logging.getLogger("phonemizer")
    logger.setLevel(logging.ERROR)
    backend = EspeakBackend(**conf["backend"], logger=logger)
    separator = Separator(**conf["separator"])

    def g2p(text: str) -> List[str]:
        phones = backend.phonemize(
            [text], separator=separator, strip=conf["strip"], njobs=1
        )[0]
        if conf["single_tokens"]:
            return [c.replace(" ", SPACE) for c in phones]
        return phones.split()

    return g2p


class TextFrontend:
    """Cleaner, tokenizer and token-id map of an exported model.

    Args:
        token_list (Sequence[str]): Tokens by id.
        token_type (str): "char" or "phn".
        cleaner (Optional[str]): "tacotron" or None.
        g2p (Optional[str]): Phonemizer name for "phn" (see ``ESPEAK_G2P``).

    """

    def __init__(
        self,
        token_list: Sequence[str],
        token_type: str,
        cleaner: Optional[str] = None,
        g2p: Optional[str] = None,
    ):
        if token_type not in ("char", "phn"):
            raise ValueError(
                f"token_type {token_type!r} is not supported by the runtime "
                "(supported: char, phn)"
            )
        if "<unk>" not in token_list:
            raise ValueError("token_list has no <unk> token")
        self.token_list = list(token_list)
        self.token2id = {t: i for i, t in enumerate(self.token_list)}
        self.unk_id = self.token2id["<unk>"]
        self.clean = _cleaner(cleaner)
        self.g2p = _phonemizer(g2p) if token_type == "phn" else None

    def tokens(self, text: str) -> List[str]:
        text = self.clean(text)
        if self.g2p is not None:
            return self.g2p(text)
        return [SPACE if c == " " else c for c in text]

    def __call__(self, text: str) -> np.ndarray:
        """Token ids (T_text,) of one text, unknown tokens as ``<unk>``."""
        return np.array(
            [self.token2id.get(t, self.unk_id) for t in self.tokens(text)],
            dtype=np.int64,
        )


def split_sentences(text: str, max_chars: int = 400) -> List[str]:
    """Split text into sentences of at most ``max_chars`` characters.

    Sentences end at . ! ? ; : (followed by white space) and at line breaks. A longer
    sentence is cut at its last comma before the limit, else at its last space, else hard.

    Args:
        text (str): Any text.
        max_chars (int): Upper bound of a piece's length (> 0).

    Returns:
        List[str]: Non-blank pieces, in order.

    """
    if max_chars <= 0:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    pieces = []
    for sentence in SENTENCE_END.split(text):
        sentence = " ".join(sentence.split())
        while len(sentence) > max_chars:
            head = sentence[: max_chars + 1]
            cut = head.rfind(", ")
            cut = cut + 1 if cut > 0 else head.rfind(" ")
            cut = cut if cut > 0 else max_chars
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    return [p for p in pieces if p]
