"""Per-speaker scores of decoded speech: does each speaker id give that speaker's voice?

For each test set, with the decoded wavs ``<decode_dir>/<set>/wav/<utt>.wav`` and the
references ``<data_root>/<set>/{wav.scp,utt2spk}``, per speaker:

* mean F0 of the synthesis against the recordings (pyworld DIO + StoneMask, voiced frames
  pooled over the speaker's utterances) and its relative error;
* MCD of each synthesis against its own recording (``score.spectral_scores``: DTW-aligned
  mel-cepstra) and the log-F0 RMSE along the same path;
* nearest-speaker identification: each synthesis goes to the speaker whose reference
  centroid is nearest in MCD, the centroid being the mean mel-cepstrum (c1..c34) over the
  voiced frames of that speaker's recordings. Voiced frames carry the voice (formants and
  the harmonic structure that the pitch leaves in the envelope); silences and pauses
  would only measure the vocoder's noise floor;
* the SECS matrix: cosine similarity of resemblyzer's GE2E speaker embeddings between the
  synthesis of speaker i (rows) and the mean embedding of speaker j's recordings
  (columns). Without resemblyzer the matrix is left out with a note.

With ``--model_file`` it also speaks the first ``--num_texts`` sentences of each set with
every speaker id (``--spk2sid``) or every speaker's mean x-vector (``--spk_xvector``)
into ``<set>/all_speakers/<speaker>/<utt>.wav`` and reports, per target speaker, the
mean F0 and how often its voice is identified (MCD centroid and SECS): "the same sentence
with every speaker id gives different voices". Writes ``<set>/speaker_scores.json`` and
``<set>/speaker_scores.md``.

    python -m glowtts_recipe.speaker_scores --decode_dir exp/tts/decode_x \\
        --data_root dump/raw eval1
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from glowtts_recipe.datadir import DataError, atomic_write, main_guard, read_kv
from glowtts_recipe.score import log_f0, mcep, read_wav, spectral_scores

MCD_SCALE = 10.0 / np.log(10.0) * np.sqrt(2.0)  # MCD(dB) = MCD_SCALE * ||c_a - c_b||


def voiced_f0(x: np.ndarray, fs: int, n_shift: int = 256) -> np.ndarray:
    """F0 in Hz of the voiced frames of a wav."""
    f0 = np.exp(log_f0(x, fs, n_shift))  # NaN where unvoiced
    return f0[~np.isnan(f0)]


def voice_features(
    x: np.ndarray, fs: int, n_fft: int = 1024, n_shift: int = 256
) -> Tuple[np.ndarray, np.ndarray]:
    """(F0 in Hz of the voiced frames, mel-cepstra c1.. of the voiced frames) of a wav."""
    f0 = np.exp(log_f0(x, fs, n_shift))  # NaN where unvoiced
    mc = mcep(x, n_fft, n_shift)[:, 1:]
    offset = n_fft // (2 * n_shift)  # mcep frame i is centred on f0 frame i + offset
    voiced = ~np.isnan(f0[np.minimum(np.arange(len(mc)) + offset, len(f0) - 1)])
    return f0[~np.isnan(f0)], (mc[voiced] if voiced.any() else mc)


def centroid_distances(
    mc: np.ndarray, centroids: Dict[str, np.ndarray]
) -> Dict[str, float]:
    """MCD (dB) of the mean mel-cepstrum ``mc.mean(0)`` to each speaker's centroid."""
    mean = mc.mean(axis=0)
    return {
        s: float(MCD_SCALE * np.linalg.norm(mean - c)) for s, c in centroids.items()
    }


def nearest_speaker(mc: np.ndarray, centroids: Dict[str, np.ndarray]) -> str:
    d = centroid_distances(mc, centroids)
    return min(d, key=d.get)


def load_secs_encoder():
    """wav (float32, fs) -> unit GE2E embedding, or (None, why) without resemblyzer."""
    try:
        from resemblyzer import VoiceEncoder, preprocess_wav
    except ImportError as e:
        return None, f"resemblyzer is not installed ({e}): pip install '.[xvector]'"
    encoder = VoiceEncoder("cpu", verbose=False)
    return (
        lambda x, fs: encoder.embed_utterance(preprocess_wav(x, fs))
    ), "resemblyzer GE2E"


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-8)


class References:
    """Per-speaker references of one set: voiced-frame F0, mel-cepstral centroids, SECS."""

    def __init__(self, data_dir: Path, fs: int, n_fft: int, n_shift: int, secs=None):
        for name in ("wav.scp", "utt2spk"):
            if not (data_dir / name).is_file():
                raise DataError(f"{data_dir / name}: missing")
        self.wavs, self.utt2spk = read_kv(data_dir / "wav.scp"), read_kv(
            data_dir / "utt2spk"
        )
        self.speakers = sorted(set(self.utt2spk.values()))
        self.audio: Dict[str, np.ndarray] = {}
        f0s: Dict[str, list] = {s: [] for s in self.speakers}
        mcs: Dict[str, list] = {s: [] for s in self.speakers}
        embs: Dict[str, list] = {s: [] for s in self.speakers}
        for utt, path in self.wavs.items():
            spk = self.utt2spk[utt]
            x = self.audio[utt] = read_wav(path, fs)
            f0, mc = voice_features(x, fs, n_fft, n_shift)
            f0s[spk].append(f0)
            mcs[spk].append(mc)
            if secs is not None:
                embs[spk].append(secs(x, fs))
        self.f0 = {s: float(np.mean(np.concatenate(f0s[s]))) for s in self.speakers}
        self.centroids = {s: np.concatenate(mcs[s]).mean(axis=0) for s in self.speakers}
        self.embeddings = (
            {s: _unit(np.mean(embs[s], axis=0)) for s in self.speakers}
            if secs is not None
            else None
        )


def identify(
    x: np.ndarray, fs: int, refs: References, n_fft: int, n_shift: int, secs=None
) -> dict:
    """Mean F0, nearest speaker (MCD centroid) and SECS row of one synthesised wav."""
    f0, mc = voice_features(x, fs, n_fft, n_shift)
    out = {"f0": f0, "nearest": nearest_speaker(mc, refs.centroids)}
    if secs is not None and refs.embeddings is not None:
        e = _unit(secs(x, fs))
        out["secs"] = {s: float(e @ v) for s, v in refs.embeddings.items()}
    return out


def vocoded_f0(vocoded_dir: Path, refs: References, fs: int, n_shift: int):
    """Mean F0 per speaker of the references through features and the vocoder
    (``reference_vocoded/<utt>.wav``, written by the scoring stage), or None if absent.

    The vocoder moves F0 by itself (Griffin-Lim reads a low voice about 10% high), so the
    model's own error is the synthesis against this ceiling, not against the recordings.
    """
    if not all((vocoded_dir / f"{u}.wav").is_file() for u in refs.wavs):
        return None
    f0s: Dict[str, list] = {s: [] for s in refs.speakers}
    for utt, spk in refs.utt2spk.items():
        x = read_wav(str(vocoded_dir / f"{utt}.wav"), fs)
        f0s[spk].append(voiced_f0(x, fs, n_shift))  # no mel-cepstra: 1 s a wav
    return {s: float(np.mean(np.concatenate(v))) for s, v in f0s.items()}


def score_speakers(
    synth_dir: Path,
    refs: References,
    fs: int,
    n_fft: int,
    n_shift: int,
    secs=None,
    vocoded_dir: Optional[Path] = None,
) -> dict:
    """Per-speaker figures of the decoded wavs ``synth_dir/<utt>.wav`` (each utt's own spk),
    with the F0 of ``vocoded_dir``'s references through the vocoder where given."""
    rows: Dict[str, dict] = {
        s: {"utts": 0, "f0": [], "mcd": [], "log_f0_rmse": [], "correct": 0, "secs": []}
        for s in refs.speakers
    }
    missing = [u for u in refs.wavs if not (synth_dir / f"{u}.wav").is_file()]
    if missing:
        raise DataError(
            f"{synth_dir}: {len(missing)} decoded wav(s) missing, e.g. "
            f"{missing[0]}.wav (run decoding first)"
        )
    for utt in sorted(refs.wavs):
        spk, gen = refs.utt2spk[utt], read_wav(str(synth_dir / f"{utt}.wav"), fs)
        r = rows[spk]
        got = identify(gen, fs, refs, n_fft, n_shift, secs)
        mcd, rmse = spectral_scores(gen, refs.audio[utt], fs, n_fft, n_shift)
        r["utts"] += 1
        r["f0"].append(got["f0"])
        r["mcd"].append(mcd)
        if rmse is not None:
            r["log_f0_rmse"].append(rmse)
        r["correct"] += got["nearest"] == spk
        if "secs" in got:
            r["secs"].append([got["secs"][s] for s in refs.speakers])
    vocoded = vocoded_f0(vocoded_dir, refs, fs, n_shift) if vocoded_dir else None
    out = {}
    for spk, r in rows.items():
        f0 = float(np.mean(np.concatenate(r["f0"]))) if r["f0"] else float("nan")
        out[spk] = {
            "utterances": r["utts"],
            "f0_synthesis_hz": f0,
            "f0_recordings_hz": refs.f0[spk],
            "f0_relative_error": (f0 - refs.f0[spk]) / refs.f0[spk],
        }
        if vocoded is not None:
            out[spk]["f0_vocoded_hz"] = vocoded[spk]
            out[spk]["f0_error_vs_vocoded"] = (f0 - vocoded[spk]) / vocoded[spk]
        out[spk] |= {
            "mcd_db": float(np.mean(r["mcd"])),
            "log_f0_rmse": (
                float(np.mean(r["log_f0_rmse"])) if r["log_f0_rmse"] else None
            ),
            "nearest_speaker_accuracy": r["correct"] / r["utts"],
        }
        if r["secs"]:
            out[spk]["secs"] = dict(
                zip(refs.speakers, np.mean(r["secs"], axis=0).tolist())
            )
    return out


def synthesize_all_speakers(
    tts,
    texts: Dict[str, str],
    conditions: Dict[str, dict],
    out_dir: Path,
    text_conditions: Optional[Dict[str, dict]] = None,
) -> Dict[Tuple[str, str], Path]:
    """Speak every text with every speaker condition into ``out_dir/<spk>/<utt>.wav``.

    ``conditions`` maps a speaker to the keyword arguments of ``tts`` (``sids=`` and/or
    ``spembs=``); ``text_conditions`` maps a text's key to more (its ``lids=``). Existing
    wavs are kept (a rerun resumes).
    """
    import soundfile as sf
    import torch

    paths = {}
    for spk, kwargs in conditions.items():
        for utt, text in texts.items():
            path = out_dir / spk / f"{utt}.wav"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.manual_seed(0)  # the same prior noise for every speaker
                extra = (text_conditions or {}).get(utt, {})
                wav = tts(text, **kwargs, **extra)["wav"].view(-1).cpu().numpy()
                tmp = path.with_name(f".{path.name}.tmp.wav")
                sf.write(str(tmp), wav, tts.fs, subtype="PCM_16")
                tmp.replace(path)
            paths[(spk, utt)] = path
    return paths


def score_all_speakers(
    paths: Dict[Tuple[str, str], Path],
    refs: References,
    fs: int,
    n_fft: int,
    n_shift: int,
    secs=None,
) -> dict:
    """Per target speaker: mean F0 and identification rates of the same sentences."""
    out: Dict[str, dict] = {}
    for (spk, _), path in sorted(paths.items()):
        got = identify(read_wav(str(path), fs), fs, refs, n_fft, n_shift, secs)
        r = out.setdefault(spk, {"f0": [], "nearest": [], "secs_best": []})
        r["f0"].append(got["f0"])
        r["nearest"].append(got["nearest"])
        if "secs" in got:
            r["secs_best"].append(max(got["secs"], key=got["secs"].get))
    result = {}
    for spk, r in out.items():
        result[spk] = {
            "texts": len(r["nearest"]),
            "f0_synthesis_hz": float(np.mean(np.concatenate(r["f0"]))),
            "f0_recordings_hz": refs.f0.get(spk),
            "identified_as": {
                s: r["nearest"].count(s) for s in sorted(set(r["nearest"]))
            },
            "nearest_speaker_accuracy": r["nearest"].count(spk) / len(r["nearest"]),
        }
        if r["secs_best"]:
            result[spk]["secs_accuracy"] = r["secs_best"].count(spk) / len(
                r["secs_best"]
            )
    return result


def markdown(name: str, result: dict) -> str:
    spk = result["speakers"]
    vocoded = "f0_vocoded_hz" in next(iter(spk.values()))
    lines = [
        f"## {name}: per-speaker scores",
        "",
        "| speaker | utts | F0 synth (Hz) | F0 rec (Hz) | F0 error | "
        + ("F0 rec -> vocoder (Hz) | F0 error vs vocoder | " if vocoded else "")
        + "MCD (dB) | nearest-speaker acc |",
        "|---|---:|---:|---:|---:|" + ("---:|---:|" if vocoded else "") + "---:|---:|",
    ]
    for s, r in spk.items():
        lines.append(
            f"| {s} | {r['utterances']} | {r['f0_synthesis_hz']:.1f} | "
            f"{r['f0_recordings_hz']:.1f} | {100 * r['f0_relative_error']:+.1f}% | "
            + (
                f"{r['f0_vocoded_hz']:.1f} | {100 * r['f0_error_vs_vocoded']:+.1f}% | "
                if vocoded
                else ""
            )
            + f"{r['mcd_db']:.2f} | {100 * r['nearest_speaker_accuracy']:.0f}% |"
        )
    lines += [
        "",
        f"Nearest-speaker accuracy over all utterances: "
        f"{100 * result['nearest_speaker_accuracy']:.1f}%",
        "",
    ]
    if "secs" in next(iter(spk.values())):
        names = list(spk)
        lines += [
            "SECS (rows: synthesis of speaker, columns: recordings of speaker; "
            f"{result['secs_encoder']}):",
            "",
            "| synth \\ rec | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for s in names:
            row = spk[s]["secs"]
            lines.append(
                f"| {s} | "
                + " | ".join(
                    (f"**{row[t]:.3f}**" if t == s else f"{row[t]:.3f}") for t in names
                )
                + " |"
            )
        lines.append("")
    else:
        lines += [f"SECS: not computed ({result['secs_encoder']})", ""]
    if "all_speakers" in result:
        lines += [
            "Every speaker id on the same sentences:",
            "",
            "| target speaker | texts | F0 synth (Hz) | F0 rec (Hz) | identified (MCD) "
            "| identified (SECS) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for s, r in result["all_speakers"].items():
            rec = r["f0_recordings_hz"]
            secs = r.get("secs_accuracy")
            lines.append(
                f"| {s} | {r['texts']} | {r['f0_synthesis_hz']:.1f} | "
                f"{rec:.1f} | {100 * r['nearest_speaker_accuracy']:.0f}% | "
                f"{'-' if secs is None else f'{100 * secs:.0f}%'} |"
            )
        lines.append("")
    return "\n".join(lines)


def speaker_conditions(
    speakers: List[str], spk2sid: Optional[str], spk_xvector: Optional[str]
) -> Dict[str, dict]:
    """Speaker -> ``Text2Speech`` keyword arguments (``sids`` and/or ``spembs``)."""
    import torch

    if not spk2sid and not spk_xvector:
        raise DataError("--model_file needs --spk2sid or --spk_xvector")
    conditions = {s: {} for s in speakers}
    if spk_xvector:
        import kaldiio

        table = dict(kaldiio.load_scp(spk_xvector))
        missing = [s for s in speakers if s not in table]
        if missing:
            raise DataError(f"{spk_xvector}: no x-vector for speaker {missing[0]}")
        for s in speakers:
            conditions[s]["spembs"] = torch.from_numpy(
                np.asarray(table[s], dtype=np.float32)
            )
    if spk2sid:
        sids = read_kv(spk2sid)
        missing = [s for s in speakers if s not in sids]
        if missing:
            raise DataError(f"{spk2sid}: unknown speaker {missing[0]}")
        for s in speakers:
            conditions[s]["sids"] = torch.tensor([int(sids[s])])
    return conditions


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decode_dir", required=True)
    parser.add_argument("--data_root", default="dump/raw")
    parser.add_argument("--fs", type=int, default=22050)
    parser.add_argument("--n_fft", type=int, default=1024)
    parser.add_argument("--n_shift", type=int, default=256)
    parser.add_argument(
        "--model_file",
        default=None,
        help="also speak the same sentences with every speaker id",
    )
    parser.add_argument("--train_config", default=None)
    parser.add_argument("--vocoder_config", default=None)
    parser.add_argument("--spk2sid", default=None)
    parser.add_argument("--spk_xvector", default=None, help="per-speaker x-vector scp")
    parser.add_argument("--num_texts", type=int, default=3)
    parser.add_argument("sets", nargs="+")
    args = parser.parse_args(cmd)

    secs, secs_name = load_secs_encoder()
    tts = None
    for name in args.sets:
        set_dir, data_dir = Path(args.decode_dir) / name, Path(args.data_root) / name
        refs = References(data_dir, args.fs, args.n_fft, args.n_shift, secs)
        speakers = score_speakers(
            set_dir / "wav",
            refs,
            args.fs,
            args.n_fft,
            args.n_shift,
            secs,
            vocoded_dir=set_dir / "reference_vocoded",
        )
        total = sum(r["utterances"] for r in speakers.values())
        result = {
            "set": name,
            "speakers": speakers,
            "secs_encoder": secs_name,
            "nearest_speaker_accuracy": sum(
                r["nearest_speaker_accuracy"] * r["utterances"]
                for r in speakers.values()
            )
            / total,
        }
        if args.model_file:
            import torch

            if tts is None:
                from espnet2.bin.tts_inference import Text2Speech

                import espnet_glowtts  # noqa: F401  (registers glow_tts)

                tts = Text2Speech(
                    train_config=args.train_config,
                    model_file=args.model_file,
                    vocoder_config=args.vocoder_config,
                )
            texts = dict(sorted(read_kv(data_dir / "text").items())[: args.num_texts])
            # Each text keeps its own language (utt2lid) when the model has language ids.
            utt2lid = (
                read_kv(data_dir / "utt2lid")
                if (data_dir / "utt2lid").is_file()
                else {}
            )
            text_conditions = {
                u: {"lids": torch.tensor([int(utt2lid[u])])}
                for u in texts
                if u in utt2lid
            }
            paths = synthesize_all_speakers(
                tts,
                texts,
                speaker_conditions(refs.speakers, args.spk2sid, args.spk_xvector),
                set_dir / "all_speakers",
                text_conditions,
            )
            result["all_speakers"] = score_all_speakers(
                paths, refs, args.fs, args.n_fft, args.n_shift, secs
            )
        atomic_write(
            set_dir / "speaker_scores.json", json.dumps(result, indent=1) + "\n"
        )
        atomic_write(set_dir / "speaker_scores.md", markdown(name, result))
        print(markdown(name, result), file=sys.stderr)


if __name__ == "__main__":
    main_guard(main)
