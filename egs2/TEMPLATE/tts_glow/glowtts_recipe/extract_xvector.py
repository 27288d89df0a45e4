"""Speaker embeddings (x-vectors) of a data directory, for training with ``spembs``.

Writes ``OUT_DIR/xvector.{ark,scp}`` (one float32 vector per utterance of
``DATA_DIR/wav.scp``) and ``OUT_DIR/spk_xvector.{ark,scp}`` (the mean per speaker of
``DATA_DIR/utt2spk``), in Kaldi format as ESPnet's ``--use_spk_embed`` expects. Tools:

- ``resemblyzer`` (built in, ``pip install .[xvector]``): the GE2E speaker encoder that the
  ``resemblyzer`` wheel carries (256-dim, fully offline).
- ``file``: embeddings you supply (``--embeddings`` a Kaldi scp or ark), keyed per
  utterance or per speaker; which one is found by matching the keys against ``utt2spk``.
- ``espnet`` / ``speechbrain``: ESPnet's speaker model (``--model`` a packed zip or an
  experiment directory with ``config.yaml`` and a ``.pth``) or a SpeechBrain
  ``EncoderClassifier`` directory, both local: these machines cannot download them.

Per-utterance results are cached in ``OUT_DIR/.xvector_cache`` so an interrupted run
resumes; the scp files are renamed into place last, so they mark a finished extraction.

    python -m glowtts_recipe.extract_xvector --tool resemblyzer dump/raw/tr_no_dev \\
        dump/xvector/tr_no_dev
"""

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Callable, Dict

import numpy as np

from glowtts_recipe.datadir import DataError, main_guard, read_kv

TOOLS = ("resemblyzer", "file", "espnet", "speechbrain")
ENCODER_FS = 16000  # the rate of all three speaker encoders


def load_wav(path: str, fs: int = ENCODER_FS) -> np.ndarray:
    """A wav.scp entry (a file path) -> float32 mono at ``fs``."""
    import librosa
    import soundfile as sf

    wav, sr = sf.read(path, dtype="float32", always_2d=True)
    wav = wav.mean(axis=1)
    return librosa.resample(wav, orig_sr=sr, target_sr=fs) if sr != fs else wav


def resemblyzer_embedder() -> Callable[[str], np.ndarray]:
    """wav path -> 256-dim GE2E embedding (L2-normalised) of resemblyzer's bundled model."""
    try:
        from resemblyzer import VoiceEncoder, preprocess_wav
    except ImportError as e:
        raise DataError(
            f"--tool resemblyzer needs the resemblyzer package ({e}): "
            "pip install '.[xvector]'"
        )
    encoder = VoiceEncoder("cpu", verbose=False)
    return lambda path: encoder.embed_utterance(
        preprocess_wav(load_wav(path), ENCODER_FS)
    )


def espnet_embedder(model: str) -> Callable[[str], np.ndarray]:
    """ESPnet's speaker model (``Speech2Embedding``) from a local zip or experiment dir."""
    from espnet2.bin.spk_inference import Speech2Embedding

    path = Path(model)
    if path.suffix == ".zip":
        from espnet_model_zoo.downloader import ModelDownloader

        files = ModelDownloader(str(path.parent / ".unpacked")).unpack_local_file(
            str(path)
        )
        config, weights = files["train_config"], files["model_file"]
    else:
        config, pths = path / "config.yaml", sorted(path.glob("*.pth"))
        if not config.is_file() or not pths:
            raise DataError(
                f"--model {path}: expected config.yaml and a .pth model file"
            )
        weights = next(
            (p for p in pths if "best" in p.name or p.name == "model.pth"), pths[0]
        )
    s2e = Speech2Embedding(train_config=str(config), model_file=str(weights))
    return lambda wav: s2e(load_wav(wav)).view(-1).cpu().numpy()


def speechbrain_embedder(model: str) -> Callable[[str], np.ndarray]:
    """A local SpeechBrain ``EncoderClassifier`` (hyperparams.yaml + checkpoints)."""
    try:
        import torch
        from speechbrain.inference.speaker import EncoderClassifier
    except ImportError as e:
        raise DataError(f"--tool speechbrain needs the speechbrain package ({e})")
    encoder = EncoderClassifier.from_hparams(
        source=model, savedir=model, run_opts={"device": "cpu"}
    )
    return (
        lambda wav: encoder.encode_batch(torch.from_numpy(load_wav(wav))[None])
        .view(-1)
        .cpu()
        .numpy()
    )


def make_embedder(tool: str, model: str) -> Callable[[str], np.ndarray]:
    if tool == "resemblyzer":
        return resemblyzer_embedder()
    if not model or not Path(model).exists():
        raise DataError(
            f"--tool {tool} needs a local model (--model PATH"
            f"{', not found: ' + model if model else ''}): its pretrained "
            "weights cannot be downloaded here (no network); use --tool "
            "resemblyzer or --tool file instead"
        )
    return espnet_embedder(model) if tool == "espnet" else speechbrain_embedder(model)


def read_embeddings(path: str) -> Dict[str, np.ndarray]:
    """A Kaldi scp (``key ark:offset`` lines) or ark file -> {key: float32 vector}."""
    import kaldiio

    if not Path(path).is_file():
        raise DataError(f"--embeddings {path}: not found")
    try:
        table = (
            kaldiio.load_scp(path) if path.endswith(".scp") else kaldiio.load_ark(path)
        )
        out = {
            k: np.asarray(v, dtype=np.float32).reshape(-1)
            for k, v in dict(table).items()
        }
    except Exception as e:  # kaldiio raises several types for a broken file
        raise DataError(f"--embeddings {path}: not a readable Kaldi scp/ark ({e})")
    if not out:
        raise DataError(f"--embeddings {path}: no embeddings")
    dims = {v.size for v in out.values()}
    if len(dims) > 1:
        raise DataError(
            f"--embeddings {path}: vectors of different sizes {sorted(dims)}"
        )
    bad = next((k for k, v in out.items() if not np.isfinite(v).all()), None)
    if bad is not None:
        raise DataError(
            f"--embeddings {path}: the vector of {bad} has NaN or inf values"
        )
    return out


def match_embeddings(
    table: Dict[str, np.ndarray], utt2spk: Dict[str, str], path: str
) -> Dict[str, np.ndarray]:
    """Per-utterance vectors from a table keyed per utterance or per speaker."""
    missing_utts = [u for u in utt2spk if u not in table]
    if not missing_utts:
        return {u: table[u] for u in utt2spk}
    missing_spks = sorted({s for s in utt2spk.values() if s not in table})
    if not missing_spks:
        return {u: table[s] for u, s in utt2spk.items()}
    raise DataError(
        f"--embeddings {path}: keys match neither the utterances of utt2spk "
        f"({len(missing_utts)} missing, e.g. {missing_utts[0]}) nor its "
        f"speakers ({len(missing_spks)} missing, e.g. {missing_spks[0]})"
    )


def write_table(out_dir: Path, name: str, vectors: Dict[str, np.ndarray]) -> None:
    """``name.ark`` + ``name.scp`` (sorted keys), through temporary names and renames."""
    import kaldiio

    ark, scp = out_dir / f"{name}.ark", out_dir / f"{name}.scp"
    tmp_ark, tmp_scp = out_dir / f".{name}.ark.tmp", out_dir / f".{name}.scp.tmp"
    kaldiio.save_ark(
        str(tmp_ark),
        {k: vectors[k].astype(np.float32) for k in sorted(vectors)},
        scp=str(tmp_scp),
    )
    # The scp points into the temporary ark: point it at the final name.
    lines = tmp_scp.read_text(encoding="utf-8").splitlines()
    tmp_scp.write_text(
        "".join(
            f"{k} {ark}:{ref.rsplit(':', 1)[1]}\n"
            for k, ref in (ln.split(" ", 1) for ln in lines)
        ),
        encoding="utf-8",
    )
    os.replace(tmp_ark, ark)
    os.replace(tmp_scp, scp)


def speaker_means(
    vectors: Dict[str, np.ndarray], utt2spk: Dict[str, str]
) -> Dict[str, np.ndarray]:
    """The mean vector of each speaker's utterances (ESPnet's ``spk_xvector``)."""
    by_spk: Dict[str, list] = {}
    for utt, spk in utt2spk.items():
        by_spk.setdefault(spk, []).append(vectors[utt])
    return {s: np.mean(v, axis=0).astype(np.float32) for s, v in by_spk.items()}


def extract(
    data_dir,
    out_dir,
    tool: str = "resemblyzer",
    embeddings: str = None,
    model: str = None,
    quiet: bool = False,
) -> Dict[str, np.ndarray]:
    """Write the x-vector tables of ``data_dir`` into ``out_dir``; return per-utt vectors."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    for name in ("wav.scp", "utt2spk"):
        if not (data_dir / name).is_file():
            raise DataError(f"{data_dir / name}: missing")
    wavs, utt2spk = read_kv(data_dir / "wav.scp"), read_kv(data_dir / "utt2spk")
    if set(wavs) != set(utt2spk):
        raise DataError(f"{data_dir}: wav.scp and utt2spk have different ids")
    out_dir.mkdir(parents=True, exist_ok=True)
    if tool == "file":
        if not embeddings:
            raise DataError("--tool file needs --embeddings SCP (a Kaldi scp or ark)")
        vectors = match_embeddings(read_embeddings(embeddings), utt2spk, embeddings)
    else:
        cache = out_dir / ".xvector_cache"
        cache.mkdir(exist_ok=True)
        todo = [u for u in wavs if not (cache / f"{u}.npy").is_file()]
        if todo:
            embed = make_embedder(tool, model)
            for i, utt in enumerate(todo, 1):
                tmp = cache / f".{utt}.tmp.npy"
                np.save(tmp, np.asarray(embed(wavs[utt]), dtype=np.float32).reshape(-1))
                os.replace(tmp, cache / f"{utt}.npy")
                if not quiet and (i % 50 == 0 or i == len(todo)):
                    print(f"  {i}/{len(todo)} embeddings", file=sys.stderr, flush=True)
        vectors = {u: np.load(cache / f"{u}.npy") for u in wavs}
    write_table(out_dir, "xvector", vectors)
    write_table(out_dir, "spk_xvector", speaker_means(vectors, utt2spk))
    if tool != "file":
        shutil.rmtree(out_dir / ".xvector_cache", ignore_errors=True)
    if not quiet:
        dim = next(iter(vectors.values())).size
        print(
            f"{out_dir}: {len(vectors)} x-vectors of {dim} dims ({tool}), "
            f"{len(set(utt2spk.values()))} speakers",
            file=sys.stderr,
        )
    return vectors


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tool", choices=TOOLS, default="resemblyzer")
    parser.add_argument(
        "--embeddings",
        default=None,
        help="--tool file: Kaldi scp/ark keyed per utterance or speaker",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="--tool espnet/speechbrain: a local model (zip or directory)",
    )
    parser.add_argument("data_dir", help="data directory with wav.scp and utt2spk")
    parser.add_argument("out_dir", help="where xvector.{ark,scp} and spk_xvector.* go")
    args = parser.parse_args(cmd)
    extract(args.data_dir, args.out_dir, args.tool, args.embeddings, args.model)


if __name__ == "__main__":
    main_guard(main)
