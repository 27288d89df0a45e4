"""Synthesize speech from an exported Glow-TTS directory with onnxruntime and numpy."""

import json
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence, Union

import numpy as np

from espnet_glowtts.runtime.frontend import TextFrontend, split_sentences
from espnet_glowtts.runtime.vocoder import GriffinLim

FORMAT = "espnet_glowtts-onnx"
FORMAT_VERSION = 1
CONFIG = "config.json"


class ExportError(ValueError):
    """The model directory is not a usable export."""


def load_config(model_dir: Union[str, Path]) -> dict:
    """Read and check ``config.json`` of an export (one-line errors for a bad directory)."""
    model_dir = Path(model_dir)
    path = model_dir / CONFIG
    if not path.is_file():
        raise ExportError(
            f"{model_dir} is not an exported Glow-TTS model: no {CONFIG} "
            "(write one with python -m espnet_glowtts.bin.export_onnx)"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ExportError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ExportError(
            f"{path} is not an exported Glow-TTS config " f"(format is not {FORMAT!r})"
        )
    if config.get("format_version") != FORMAT_VERSION:
        raise ExportError(
            f"{path} has format_version {config.get('format_version')}, this "
            f"runtime reads version {FORMAT_VERSION}: export the model again "
            "with this version of espnet_glowtts"
        )
    if not config.get("token_list"):
        raise ExportError(f"{path} has no token_list")
    for graph in ("encoder", "decoder"):
        if not (model_dir / config["graphs"][graph]).is_file():
            raise ExportError(f"{model_dir} is missing {config['graphs'][graph]}")
    return config


def intersperse(ids: np.ndarray, blank_id: int) -> np.ndarray:
    """Insert ``blank_id`` between tokens and at both ends (N -> 2N + 1)."""
    out = np.full(2 * len(ids) + 1, blank_id, dtype=np.int64)
    out[1::2] = ids
    return out


def fold_blank_durations(w: np.ndarray) -> np.ndarray:
    """Durations over 2N + 1 tokens (blanks at even places) -> over the N real tokens.

    As ``espnet_glowtts.tensor_utils.fold_blank_durations``: an interior blank's frames are
    split between its neighbours (the earlier gets the smaller half), the end blanks go to
    the first and last tokens.
    """
    blanks, tokens = w[0::2].copy(), w[1::2].copy()
    to_previous = blanks[1:-1] // 2
    tokens[1:] += blanks[1:-1] - to_previous
    tokens[:-1] += to_previous
    tokens[0] += blanks[0]
    tokens[-1] += blanks[-1]
    return tokens


def expand_prior(mean: np.ndarray, log_std: np.ndarray, w: np.ndarray, squeeze: int):
    """Round the total up to a multiple of ``squeeze`` (extra frames to the last token) and
    repeat each token's prior over its frames: the hard alignment path, in linear time.

    Args:
        mean, log_std (ndarray): Prior (1, odim, T_text').
        w (ndarray): Frames per token (T_text',).
        squeeze (int): The decoder's squeeze factor.

    Returns:
        Tuple: mean_y, log_std_y (1, odim, T_feats) and the adjusted durations (T_text',).

    """
    w = w.astype(np.int64).copy()
    w[-1] += (-int(w.sum())) % squeeze
    return np.repeat(mean, w, axis=2), np.repeat(log_std, w, axis=2), w


class Synthesizer:
    """Text -> speech with an exported Glow-TTS model.

    Args:
        model_dir: Directory written by ``python -m espnet_glowtts.bin.export_onnx``.
        num_threads (Optional[int]): onnxruntime intra-op threads (default: its own).
        seed (Optional[int]): Seed of the prior noise and Griffin-Lim's initial phase.
        max_chars (int): Longest piece of text synthesized at once; longer texts are split
            into sentences (memory is bounded by the longest piece).
        quantized (bool): Use the int8 graphs (``*.int8.onnx``) when the export has them.

    Example:
        >>> tts = Synthesizer("exported")
        >>> out = tts("Hello world.")  # out["wav"]: float32 at tts.fs

    """

    def __init__(
        self,
        model_dir: Union[str, Path],
        num_threads: Optional[int] = None,
        seed: Optional[int] = None,
        max_chars: int = 400,
        quantized: bool = False,
    ):
        import onnxruntime as ort

        self.model_dir = Path(model_dir)
        self.config = config = load_config(self.model_dir)
        self.frontend = TextFrontend(
            config["token_list"],
            config["token_type"],
            config.get("cleaner"),
            config.get("g2p"),
        )
        options = ort.SessionOptions()
        # Workers spin briefly between a run's operators (waking a blocked one costs more
        # than most of them), and stop when the run ends: two sessions take turns, and
        # workers of one still spinning would hold the cores the other needs (paper
        # model, 180 tokens, 2 threads, encoder + decoder: 185 ms with spinning left on,
        # 121-128 with none, 110-116 so; bench/RESULTS.md, section 4).
        options.add_session_config_entry("session.intra_op.spin_duration_us", "100")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        graphs = config["graphs"]
        if quantized:
            if "encoder_int8" not in graphs:
                raise ExportError(
                    f"{self.model_dir} has no int8 graphs "
                    "(export with --quantize true)"
                )
            graphs = dict(
                encoder=graphs["encoder_int8"], decoder=graphs["decoder_int8"]
            )
        self.encoder = ort.InferenceSession(
            str(self.model_dir / graphs["encoder"]),
            options,
            providers=["CPUExecutionProvider"],
        )
        self.decoder = ort.InferenceSession(
            str(self.model_dir / graphs["decoder"]),
            options,
            providers=["CPUExecutionProvider"],
        )
        self.rng = np.random.default_rng(seed)
        self.max_chars = max_chars
        feats = config["features"]
        self.fs = int(feats["fs"])
        vocoder = config.get("vocoder") or {}
        self.vocoder = None
        if vocoder.get("type") == "griffin_lim":
            self.vocoder = GriffinLim(
                feats["fs"],
                feats["n_fft"],
                feats["n_shift"],
                feats.get("win_length"),
                feats["n_mels"],
                feats.get("fmin"),
                feats.get("fmax"),
                n_iter=int(vocoder.get("n_iter", 32)),
                seed=seed,
            )
        mvn = config.get("normalize")
        self.mvn = (
            None
            if mvn is None
            else (
                np.asarray(mvn["mean"], np.float32),
                np.asarray(mvn["std"], np.float32),
            )
        )

    # ------------------------------------------------------------------------------
    def _conditions(self, sids, lids, spembs) -> Dict[str, np.ndarray]:
        model = self.config["model"]
        inputs = {}
        for name, value, count in (
            ("sids", sids, model.get("spks")),
            ("lids", lids, model.get("langs")),
        ):
            if not count:
                continue
            if value is None:
                raise ValueError(
                    f"{name} is required: this model has {count} "
                    f"{'speakers' if name == 'sids' else 'languages'}"
                )
            value = int(np.asarray(value).reshape(-1)[0])
            if not 0 <= value < count:
                raise ValueError(
                    f"{name} {value} is out of range: this model has ids "
                    f"0..{count - 1}"
                )
            inputs[name] = np.array([value], dtype=np.int64)
        dim = model.get("spk_embed_dim")
        if dim:
            if spembs is None:
                raise ValueError(
                    f"spembs is required: this model takes {dim}-dim "
                    "speaker embeddings"
                )
            spembs = np.asarray(spembs, dtype=np.float32).reshape(1, -1)
            if spembs.shape[1] != dim:
                raise ValueError(f"spembs has size {spembs.shape[1]}, expected {dim}")
            inputs["spembs"] = spembs
        return inputs

    def synthesize_ids(
        self,
        ids: Sequence[int],
        noise_scale: Optional[float] = None,
        length_scale: Optional[float] = None,
        sids=None,
        lids=None,
        spembs=None,
        vocoder: bool = True,
    ) -> Dict[str, np.ndarray]:
        """Token ids (T_text,) of one sentence -> features, durations and waveform."""
        model, defaults = self.config["model"], self.config["defaults"]
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            raise ValueError("text is empty: nothing to synthesize")
        bad = ids[(ids < 0) | (ids >= len(self.config["token_list"]))]
        if bad.size:
            raise ValueError(
                f"token id {int(bad[0])} is outside the vocabulary "
                f"[0, {len(self.config['token_list'])})"
            )
        noise_scale = defaults["noise_scale"] if noise_scale is None else noise_scale
        length_scale = (
            defaults["length_scale"] if length_scale is None else length_scale
        )
        cond = self._conditions(sids, lids, spembs)
        text = intersperse(ids, model["blank_id"]) if model["add_blank"] else ids
        mean, log_std, w = self.encoder.run(
            None,
            dict(
                text=text[None], length_scale=np.array(length_scale, np.float32), **cond
            ),
        )
        mean_y, log_std_y, w = expand_prior(
            mean, log_std, w[0], model["squeeze_factor"]
        )
        noise = (
            self.rng.standard_normal(mean_y.shape, dtype=np.float32)
            if noise_scale
            else np.zeros_like(mean_y)
        )
        (feats,) = self.decoder.run(
            None,
            dict(
                mean_y=mean_y,
                log_std_y=log_std_y,
                noise=noise,
                noise_scale=np.array(noise_scale, np.float32),
                **cond,
            ),
        )
        feat_gen = feats[0]
        out = dict(
            feat_gen=feat_gen,
            duration=fold_blank_durations(w) if model["add_blank"] else w,
        )
        out["feat_gen_denorm"] = (
            feat_gen if self.mvn is None else feat_gen * self.mvn[1] + self.mvn[0]
        )
        if vocoder and self.vocoder is not None:
            out["wav"] = self.vocoder(out["feat_gen_denorm"])
        return out

    def stream(self, text: str, **kwargs) -> Iterator[Dict[str, np.ndarray]]:
        """Yield the output of each sentence of ``text`` as soon as it is synthesized."""
        if not text or not text.strip():
            raise ValueError("text is empty: nothing to synthesize")
        spoken = 0
        for sentence in split_sentences(text, self.max_chars):
            ids = self.frontend(sentence)
            if not self._speakable(ids):
                continue
            spoken += 1
            yield dict(text=sentence, **self.synthesize_ids(ids, **kwargs))
        if not spoken:
            raise ValueError(
                f"text has no speakable tokens after cleaning and "
                f"tokenization: {text[:80]!r}"
            )

    def _speakable(self, ids: np.ndarray) -> bool:
        silent = {self.frontend.unk_id, self.frontend.token2id.get("<space>", -1)}
        return any(int(i) not in silent for i in ids)

    def __call__(self, text: str, **kwargs) -> Dict[str, np.ndarray]:
        """Synthesize ``text`` sentence by sentence and concatenate.

        Args:
            text (str): Any length of text.
            kwargs: noise_scale, length_scale, sids, lids, spembs, vocoder.

        Returns:
            Dict[str, ndarray]: wav (T_wav,) float32 (with a vocoder), feat_gen and
                feat_gen_denorm (T_feats, odim), duration (T_text,) over all sentences.

        """
        parts = list(self.stream(text, **kwargs))
        out = {
            key: np.concatenate([p[key] for p in parts])
            for key in ("feat_gen", "feat_gen_denorm", "duration", "wav")
            if key in parts[0]
        }
        return out
