"""glowtts_recipe.decode_dirs: tts_inference job outputs -> ESPnet's per-set decoding layout,
replacing only what it rewrites; teacher dumps in FastSpeech2's format; their key check.
Plain files, no model: well under a second."""

from pathlib import Path

import numpy as np
import pytest

from glowtts_recipe.datadir import DataError
from glowtts_recipe.decode_dirs import check_teacher, collect


def fake_job(seed_dir: Path, job: int, utts, durations):
    """What espnet2.bin.tts_inference writes into --output_dir for its keys."""
    out = seed_dir / f"output.{job}"
    for part in ("wav", "norm", "denorm", "durations", "speech_shape"):
        (out / part).mkdir(parents=True)
    for u in utts:
        (out / "wav" / f"{u}.wav").write_bytes(f"{seed_dir.name}-{u}".encode())
        for part in ("norm", "denorm"):
            np.save(out / part / f"{u}.npy", np.zeros((3, 2)))
    (out / "durations" / "durations").write_text(
        "".join(f"{u} {' '.join(map(str, durations[u]))}\n" for u in utts)
    )
    (out / "speech_shape" / "speech_shape").write_text(
        "".join(f"{u} {sum(durations[u])},80\n" for u in utts)
    )


def data_dir(root: Path, name: str, utts, samples):
    d = root / "dump" / name
    d.mkdir(parents=True)
    (d / "text").write_text("".join(f"{u} hello\n" for u in utts))
    (d / "utt2num_samples").write_text(
        "".join(f"{u} {samples.get(u, 0)}\n" for u in utts)
    )
    return d


def test_two_draws_in_espnet_layout_and_only_outputs_replaced(tmp_path):
    durations = {"a": [1, 2], "b": [3], "c": [2, 2]}
    dev = data_dir(tmp_path, "dev", ["a", "b"], {})
    test = data_dir(tmp_path, "test", ["c"], {})
    decode = tmp_path / "decode"
    (decode / "dev" / "wav_seed3").mkdir(parents=True)  # a stale draw of an earlier run
    (decode / "dev" / "scores.json").write_text("{}")  # not an output of decoding
    work = decode / "log.tmp"
    for seed in ("seed1", "seed2"):
        fake_job(work / seed, 1, ["a", "c"], durations)
        fake_job(work / seed, 2, ["b"], durations)
    collect(str(work), str(decode), [f"dev={dev}", f"test={test}"])

    d = decode / "dev"
    assert (d / "durations").read_text() == "a 1 2\nb 3\n"  # plain files, sorted
    assert (d / "speech_shape").read_text() == "a 3,80\nb 3,80\n"
    assert (d / "wav" / "b.wav").read_bytes() == b"seed1-b"
    assert (d / "wav_seed2" / "b.wav").read_bytes() == b"seed2-b"
    assert (d / "wav_seed2" / "wav.scp").read_text().split() == [
        "a",
        str(d / "wav_seed2" / "a.wav"),
        "b",
        str(d / "wav_seed2" / "b.wav"),
    ]
    feats = dict(
        x.split() for x in (d / "denorm" / "feats.scp").read_text().splitlines()
    )
    assert np.load(feats["a"]).shape == (3, 2)
    assert not (d / "wav_seed3").exists() and (d / "scores.json").read_text() == "{}"
    assert (decode / "test" / "durations").read_text() == "c 2 2\n"
    assert (decode / "log" / "seed1").is_dir() and not work.exists()


def test_teacher_forcing_writes_fastspeech2_durations_checked_against_frames(tmp_path):
    durations = {"a": [1, 3], "b": [4]}  # frames = samples // 256 + 1 = 4
    train = data_dir(tmp_path, "train", ["a", "b"], {"a": 1000, "b": 1023})
    work = tmp_path / "decode" / "log.tmp"
    fake_job(work / "seed1", 1, ["a", "b"], durations)
    collect(
        str(work), str(tmp_path / "decode"), [f"train={train}"], teacher_n_shift=256
    )
    assert (tmp_path / "decode/train/durations").read_text() == "a 1 3 0\nb 4 0\n"

    bad = data_dir(tmp_path, "bad", ["a"], {"a": 2000})  # 8 frames, durations sum to 4
    work = tmp_path / "decode2" / "log.tmp"
    fake_job(work / "seed1", 1, ["a"], durations)
    with pytest.raises(DataError, match="sum to 4, its features have 8 frames"):
        collect(
            str(work), str(tmp_path / "decode2"), [f"bad={bad}"], teacher_n_shift=256
        )


def test_teacher_dump_must_hold_exactly_the_sets_utterances(tmp_path):
    (tmp_path / "text").write_text("a x\nb y\n")
    (tmp_path / "durations").write_text("a 1 0\nb 2 0\n")
    check_teacher(str(tmp_path / "durations"), str(tmp_path / "text"))
    (tmp_path / "durations").write_text("a 1 0\nz 2 0\n")
    with pytest.raises(DataError, match="1 missing .e.g. b., 1 extra .e.g. z."):
        check_teacher(str(tmp_path / "durations"), str(tmp_path / "text"))
    with pytest.raises(DataError, match="missing: the teacher dump"):
        check_teacher(str(tmp_path / "nope"), str(tmp_path / "text"))
