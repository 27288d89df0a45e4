# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""Plug Glow-TTS into ESPnet2: the TTS task's model choices and Text2Speech's options.

Registration also makes ESPnet's decoding route usable on this stack: vocoder files get
checks with one-line errors and ESPnet-trained vocoders load (``espnet_glowtts.vocoder``),
parallel-wavegan finds ``scipy.signal.kaiser`` again, offline imports print no nltk download
errors, and text with nothing to speak is a ValueError.

ESPnet has no plugin entry points for espnet2 tasks, so registration happens when
``espnet_glowtts`` is imported. Processes that ESPnet spawns re-import only ``__main__``,
which is why the command-line wrappers in ``espnet_glowtts.bin`` import this package.
"""

import functools
import inspect
import io
import sys
from typing import Optional

NAME = "glow_tts"


def register() -> None:
    """Register ``glow_tts`` in ESPnet's TTS task and extend Text2Speech (idempotent)."""
    _scipy_kaiser_shim()
    _import_g2p_en_quietly()
    from espnet2.tasks.tts import TTSTask, tts_choices

    from espnet_glowtts.glow_tts import GlowTTS
    from espnet_glowtts.vocoder import wrap_build_vocoder_from_file

    tts_choices.classes[NAME] = GlowTTS
    if not getattr(TTSTask.build_vocoder_from_file, "_glowtts_wrapped", False):
        TTSTask.build_vocoder_from_file = staticmethod(
            wrap_build_vocoder_from_file(TTSTask.build_vocoder_from_file)
        )
    _extend_text2speech()
    __import__("espnet_glowtts.long_text").long_text.extend_text2speech()


def _scipy_kaiser_shim() -> None:
    """Give back ``scipy.signal.kaiser`` (removed in SciPy 1.13) when it is missing.

    parallel-wavegan 0.6.1, the package behind ESPnet's only neural-vocoder route, imports
    it; without it no ``.pkl`` vocoder loads. It is the same function as
    ``scipy.signal.windows.kaiser``, which SciPy keeps.
    """
    import scipy.signal
    import scipy.signal.windows

    if not hasattr(scipy.signal, "kaiser"):
        scipy.signal.kaiser = scipy.signal.windows.kaiser


def _import_g2p_en_quietly() -> None:
    """Import g2p_en (ESPnet's g2p module imports it) without nltk's download errors.

    g2p_en calls ``nltk.download`` at import when its data is missing; offline, nltk prints
    "[nltk_data] Error loading cmudict ..." on every load although Glow-TTS models that use
    other g2p never need it. The download is still tried, only quietly; a model that does use
    g2p_en without the data still fails, with nltk's LookupError, when it phonemises.
    """
    if "g2p_en" in sys.modules:
        return
    try:
        import nltk
    except ImportError:
        return
    download = nltk.download

    def quiet_download(info_or_id=None, *args, **kwargs):
        kwargs.update(quiet=True, print_error_to=io.StringIO())
        return download(info_or_id, *args, **kwargs)

    nltk.download = quiet_download
    try:
        import g2p_en  # noqa: F401
    except Exception:  # ESPnet's own import of it reports (or tolerates) the failure
        pass
    finally:
        nltk.download = download


def _extend_text2speech() -> None:
    """Make Text2Speech hand Glow-TTS ``noise_scale`` and ``length_scale``.

    Text2Speech builds its decoding options per known model class; an unknown class gets
    only ``use_teacher_forcing``. After this, ``Text2Speech(..., noise_scale=...,
    length_scale=...)`` reaches a Glow-TTS model. ``speed_control_alpha``, ESPnet's
    duration multiplier for FastSpeech, is taken as ``length_scale`` when that is not given.
    A ``noise_scale`` not given leaves the model's default (0.333). ``cuda_graphs=True``
    replays the model's inference as CUDA graphs (``GlowTTS.enable_cuda_graphs``).
    """
    from espnet2.bin.tts_inference import Text2Speech

    if getattr(Text2Speech.__init__, "_glowtts_extended", False):
        return
    original = Text2Speech.__init__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(
        self,
        *args,
        length_scale: Optional[float] = None,
        cuda_graphs: bool = False,
        **kwargs,
    ):
        original(self, *args, **kwargs)
        from espnet_glowtts.glow_tts import GlowTTS

        if cuda_graphs:
            if not isinstance(self.tts, GlowTTS):
                raise ValueError(
                    f"cuda_graphs=True is for glow_tts models, not {type(self.tts).__name__}"
                )
            if not str(self.device).startswith("cuda"):
                raise ValueError(
                    f"cuda_graphs=True needs a CUDA device, not device={self.device!r}"
                )
            self.tts.enable_cuda_graphs()
        if isinstance(self.tts, GlowTTS):
            bound = signature.bind(self, *args, **kwargs)
            given = set(bound.arguments)
            bound.apply_defaults()
            options = bound.arguments
            self.decode_conf.update(
                length_scale=(
                    options["speed_control_alpha"]
                    if length_scale is None
                    else length_scale
                )
            )
            # Text2Speech's own default (0.667, for VITS) is not ours: without an explicit
            # noise_scale the model's default applies.
            if "noise_scale" in given:
                self.decode_conf.update(noise_scale=options["noise_scale"])

    __init__._glowtts_extended = True
    Text2Speech.__init__ = __init__
    Text2Speech.__call__ = _checked_call(Text2Speech.__call__)


def _checked_call(original):
    """Text2Speech.__call__ with a one-line ValueError for text that gives no tokens.

    ESPnet's front end turns empty text, or text that its cleaner and g2p reduce to nothing
    (such as a lone quote), into an IndexError inside phonemizer or an empty sequence.
    """

    @functools.wraps(original)
    def __call__(self, text, *args, **kwargs):
        from espnet_glowtts.glow_tts import GlowTTS

        if isinstance(text, str) and isinstance(self.tts, GlowTTS):
            nothing = f"text {text!r} has nothing to speak after the cleaner and g2p"
            if not text.strip():
                raise ValueError(f"text {text!r} is empty: nothing to synthesise")
            try:
                text = self.preprocess_fn("<dummy>", dict(text=text))["text"]
            except (
                IndexError
            ) as e:  # phonemizer indexes the first line of an empty text
                raise ValueError(nothing) from e
            if len(text) == 0:
                raise ValueError(nothing)
        return original(self, text, *args, **kwargs)

    return __call__
