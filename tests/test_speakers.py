"""Several speakers and languages: corpus, data directories, x-vectors, speaker scores, and
the proof that speaker ids are learnt (a two-voice corpus, trained in-process).

espeak-ng speaks the corpora; the tests that need it or resemblyzer are skipped without.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from glowtts_recipe import (
    espeak_corpus,
    extract_xvector,
    format_data,
    prepare_data,
    speaker_scores,
)
from glowtts_recipe.datadir import DataError, main_guard, read_kv

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"
)
FS = espeak_corpus.ESPEAK_FS
SENTENCES = [
    "The old lighthouse keeper climbed the stairs every evening.",
    "She measured the fabric twice before cutting it.",
    "A quick brown fox jumps over the lazy dog.",
    "Please bring your umbrella, because the clouds look heavy.",
    "The children played chess quietly in the garden.",
    "Thick fog rolled across the harbor this morning.",
    "Would you like a cup of tea or a glass of juice?",
    "The engineer checked each valve and wrote down the numbers.",
    "My grandmother keeps her jewelry in a wooden box.",
    "We walked along the river until the sun went down.",
    "He painted the fence green and the door bright red.",
    "The library closes early on Sundays during the summer.",
    "Seven small boats sailed past the island at noon.",
    "Our neighbor grows tomatoes and beans behind the house.",
    "The teacher asked everyone to read the first chapter.",
    "A cold wind blew through the empty streets all night.",
    "They found an old map hidden inside the attic wall.",
    "The baker wakes up at four to prepare fresh bread.",
    "Birds gathered on the wire before flying south.",
    "Turn left at the bridge and follow the road to the farm.",
    "The musician tuned her violin before the concert began.",
    "Heavy rain flooded the fields near the village.",
    "The clock on the tower struck twelve at midnight.",
    "Please close the window when you leave the room.",
]


def speak(tmp_path: Path, n: int, **kwargs) -> Path:
    items = [(f"ESPK-{i:05d}", t) for i, t in enumerate(SENTENCES[:n], 1)]
    return espeak_corpus.build_corpus(
        items, tmp_path / "corpus", nj=2, quiet=True, **kwargs
    )


# ---------------------------------------------------------------------------------------
# Corpus and data directories
@needs_espeak
def test_multi_speaker_corpus_is_balanced_and_voices_differ_in_pitch(tmp_path):
    corpus = speak(tmp_path, 12, num_speakers=4)
    lines = [ln.split("|") for ln in (corpus / "metadata.csv").read_text().splitlines()]
    assert [f[3] for f in lines[:4]] == ["us", "f2", "m1", "f5"]
    assert all(f[0] == f"{f[3]}_ESPK-{i:05d}" for i, f in enumerate(lines, 1))
    prepare(corpus, tmp_path / "data", 4, 4, "--require_speakers")
    for part in ("dev", "eval1"):  # one utterance of each speaker
        spk2utt = read_kv(tmp_path / "data" / part / "spk2utt")
        assert sorted(spk2utt) == ["f2", "f5", "m1", "us"], part
        assert all(len(u.split()) == 1 for u in spk2utt.values())
    assert len(read_kv(tmp_path / "data/tr_no_dev/utt2spk")) == 4
    refs = speaker_scores.References(tmp_path / "data/tr_no_dev", FS, 1024, 256)
    f0 = sorted(refs.f0.values())
    assert all(hi > 1.15 * lo for lo, hi in zip(f0, f0[1:])), refs.f0  # well separated


def prepare(corpus, out_dir, num_dev: int, num_eval: int, *options: str) -> None:
    """prepare_data on ``corpus`` into ``out_dir`` with dev/eval1 of the given sizes."""
    prepare_data.main(
        ["--corpus_dir", str(corpus), "--out_dir", str(out_dir)]
        + ["--num_dev", str(num_dev), "--num_eval", str(num_eval), *options]
    )


@needs_espeak
def test_single_speaker_corpus_is_unchanged(tmp_path):
    corpus = speak(tmp_path, 2)
    assert (corpus / "metadata.csv").read_text().splitlines()[0] == (
        f"ESPK-00001|{SENTENCES[0]}|{SENTENCES[0]}"
    )
    assert not (corpus / "wavs" / "us_ESPK-00001.wav").exists()


@needs_espeak
def test_two_language_corpus_writes_utt2lang(tmp_path):
    corpus = speak(tmp_path, 6, languages=["en-us", "de"])
    prepare(corpus, tmp_path / "data", 1, 1)
    langs = {}
    for part in ("tr_no_dev", "dev", "eval1"):
        langs.update(read_kv(tmp_path / "data" / part / "utt2lang"))
    assert len(langs) == 6 and sorted(set(langs.values())) == ["de", "en-us"]
    # utt2lang (and the recipe's utt2sid/utt2lid) travel through formatting.
    format_data.main(
        [str(tmp_path / "data/tr_no_dev"), str(tmp_path / "dump/tr_no_dev")]
    )
    assert read_kv(tmp_path / "dump/tr_no_dev/utt2lang") == read_kv(
        tmp_path / "data/tr_no_dev/utt2lang"
    )


def test_corpus_line_without_speaker_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "c" / "wavs").mkdir(parents=True)
    lines = []
    for i in range(1, 4):
        sf.write(str(tmp_path / "c" / "wavs" / f"u{i}.wav"), np.zeros(FS // 2), FS)
        lines.append(f"u{i}|Text {i}.|Text {i}." + ("|spkA" if i != 2 else ""))
    (tmp_path / "c" / "metadata.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit):
        main_guard(
            lambda: prepare(tmp_path / "c", tmp_path / "d", 1, 1, "--require_speakers")
        )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "metadata.csv:2:" in err and "speaker" in err


# ---------------------------------------------------------------------------------------
# x-vectors
def _datadir(root: Path, utt2spk: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "wav.scp").write_text(
        "".join(f"{u} /nonexistent/{u}.wav\n" for u in utt2spk)
    )
    (root / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utt2spk.items()))
    return root


def test_user_embeddings_per_speaker_or_per_utterance(tmp_path):
    import kaldiio

    data = _datadir(tmp_path / "d", {"a_1": "a", "a_2": "a", "b_1": "b"})
    per_spk = {"a": np.ones(3, np.float32), "b": np.full(3, 2.0, np.float32)}
    kaldiio.save_ark(str(tmp_path / "spk.ark"), per_spk, scp=str(tmp_path / "spk.scp"))
    vectors = extract_xvector.extract(
        data,
        tmp_path / "x",
        tool="file",
        quiet=True,
        embeddings=str(tmp_path / "spk.scp"),
    )
    assert np.array_equal(vectors["a_2"], per_spk["a"])
    got = dict(kaldiio.load_scp(str(tmp_path / "x" / "xvector.scp")))
    assert sorted(got) == ["a_1", "a_2", "b_1"] and got["b_1"].dtype == np.float32
    spk = dict(kaldiio.load_scp(str(tmp_path / "x" / "spk_xvector.scp")))
    assert np.array_equal(spk["b"], per_spk["b"])
    # Per utterance: the speaker means are computed.
    per_utt = {
        "a_1": np.zeros(3, np.float32),
        "a_2": np.full(3, 4.0, np.float32),
        "b_1": np.ones(3, np.float32),
    }
    kaldiio.save_ark(str(tmp_path / "utt.ark"), per_utt)
    extract_xvector.extract(
        data,
        tmp_path / "y",
        tool="file",
        quiet=True,
        embeddings=str(tmp_path / "utt.ark"),
    )
    spk = dict(kaldiio.load_scp(str(tmp_path / "y" / "spk_xvector.scp")))
    assert np.allclose(spk["a"], 2.0)
    # Keys that match neither: one clear error.
    with pytest.raises(
        DataError,
        match=r"match neither .*\(2 missing, e.g. a_1\).*" r"\(1 missing, e.g. c\)",
    ):
        extract_xvector.extract(
            _datadir(tmp_path / "e", {"a_1": "a", "c_1": "c"}),
            tmp_path / "z",
            tool="file",
            embeddings=str(tmp_path / "spk.scp"),
        )


def test_espnet_and_speechbrain_need_a_local_model(tmp_path):
    data = _datadir(tmp_path / "d", {"a_1": "a"})
    for tool in ("espnet", "speechbrain"):
        with pytest.raises(DataError, match="needs a local model .*no network"):
            extract_xvector.extract(data, tmp_path / "x", tool=tool, quiet=True)


@needs_espeak
def test_resemblyzer_embeddings_tell_two_voices_apart(tmp_path):
    pytest.importorskip("resemblyzer")
    corpus = speak(tmp_path, 8, num_speakers=2)
    prepare(corpus, tmp_path / "data", 1, 1)
    data = tmp_path / "data" / "tr_no_dev"
    vectors = extract_xvector.extract(data, tmp_path / "xv", quiet=True)
    utt2spk = read_kv(data / "utt2spk")
    assert {v.shape for v in vectors.values()} == {(256,)}
    same, other = [], []
    utts = sorted(vectors)
    for i, a in enumerate(utts):
        for b in utts[i + 1 :]:
            cos = float(
                vectors[a]
                @ vectors[b]
                / np.linalg.norm(vectors[a])
                / np.linalg.norm(vectors[b])
            )
            (same if utt2spk[a] == utt2spk[b] else other).append(cos)
    assert min(same) > max(other), (same, other)
    # A rerun finds the finished tables; the cache is gone.
    assert not (tmp_path / "xv" / ".xvector_cache").exists()
    assert (tmp_path / "xv" / "spk_xvector.scp").read_text().count("\n") == 2


# ---------------------------------------------------------------------------------------
# Per-speaker scores
@needs_espeak
def test_speaker_scores_of_recordings_as_synthesis(tmp_path):
    corpus = speak(tmp_path, 8, num_speakers=2)
    prepare(corpus, tmp_path / "data", 2, 4)
    wavs = read_kv(tmp_path / "data/eval1/wav.scp")
    for sub in ("wav", "reference_vocoded"):
        (tmp_path / "decode/eval1" / sub).mkdir(parents=True)
        for utt, path in wavs.items():  # the recordings stand in for both
            shutil.copy(path, tmp_path / "decode/eval1" / sub / f"{utt}.wav")
    speaker_scores.main(
        [
            "--decode_dir",
            str(tmp_path / "decode"),
            "--data_root",
            str(tmp_path / "data"),
            "eval1",
        ]
    )
    result = json.loads((tmp_path / "decode/eval1/speaker_scores.json").read_text())
    assert result["nearest_speaker_accuracy"] == 1.0
    for spk, r in result["speakers"].items():
        assert (
            r["utterances"] == 2
            and abs(r["f0_relative_error"]) < 1e-9
            and r["f0_vocoded_hz"] == r["f0_recordings_hz"]
            and abs(r["f0_error_vs_vocoded"]) < 1e-9
            and r["mcd_db"] < 1e-6
        )
        if "secs" in r:  # with resemblyzer: each row's best is its own speaker
            assert max(r["secs"], key=r["secs"].get) == spk
    table = (tmp_path / "decode/eval1/speaker_scores.md").read_text()
    assert "| us | 2 |" in table and "F0 error vs vocoder" in table

    # Every speaker on the same sentences: a stand-in "model" that speaks with the voice
    # of the sid it is given is identified as that speaker every time; one that ignores
    # the sid is not.
    refs = speaker_scores.References(tmp_path / "data/eval1", FS, 1024, 256)
    by_spk = {
        s: next(p for u, p in wavs.items() if u.startswith(s)) for s in refs.speakers
    }
    sid2spk = {1: "f2", 2: "us"}

    class Voices:
        fs = FS

        def __init__(self, follow_sid: bool):
            self.follow_sid = follow_sid

        def __call__(self, text, sids):
            spk = sid2spk[int(sids)] if self.follow_sid else "us"
            return {"wav": torch.from_numpy(sf.read(by_spk[spk], dtype="float32")[0])}

    texts = {"t1": "Hello.", "t2": "Good bye."}
    conditions = {s: {"sids": torch.tensor([i])} for i, s in sid2spk.items()}
    for follow, expected in ((True, 1.0), (False, 0.0)):
        paths = speaker_scores.synthesize_all_speakers(
            Voices(follow), texts, conditions, tmp_path / f"all_{follow}"
        )
        got = speaker_scores.score_all_speakers(paths, refs, FS, 1024, 256)
        assert got["f2"]["nearest_speaker_accuracy"] == expected, got
        assert got["us"]["nearest_speaker_accuracy"] == 1.0


# ---------------------------------------------------------------------------------------
# The proof: speaker ids are learnt
@needs_espeak
@pytest.mark.slow
def test_speaker_ids_learn_each_voices_pitch(tmp_path):
    """Two voices an octave apart (us ~100 Hz, f2 ~200 Hz), 12 sentences each, 200 steps (batches of 4) of
    a small GlowTTS with spks=3 (sid 0 = ESPnet's <unk>): the same text spoken with each
    sid, through Griffin-Lim, is an octave apart and nearer its own speaker's pitch
    (measured with pyworld)."""
    from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank
    from espnet2.utils.griffin_lim import Spectrogram2Waveform

    from espnet_glowtts import GlowTTS

    corpus = speak(tmp_path, 24, num_speakers=2)
    lines = [ln.split("|") for ln in (corpus / "metadata.csv").read_text().splitlines()]
    fbank = LogMelFbank(fs=FS, n_fft=1024, hop_length=256, n_mels=80, fmin=0, fmax=8000)
    chars = {
        c: i + 1
        for i, c in enumerate(sorted({c for ln in lines for c in ln[2].lower()}))
    }
    spk2sid = {"us": 1, "f2": 2}
    data, rec_f0 = [], {s: [] for s in spk2sid}
    for utt, _, text, spk in lines:
        wav, _ = sf.read(str(corpus / "wavs" / f"{utt}.wav"), dtype="float32")
        mel, _ = fbank(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
        data.append(
            (torch.tensor([chars[c] for c in text.lower()]), mel[0], spk2sid[spk])
        )
        rec_f0[spk].append(speaker_scores.voiced_f0(wav, FS))
    rec_f0 = {s: float(np.mean(np.concatenate(v))) for s, v in rec_f0.items()}
    frames = torch.cat([mel for _, mel, _ in data])
    mean, std = frames.mean(0), frames.std(0)

    torch.manual_seed(0)
    model = GlowTTS(
        idim=len(chars) + 1,
        odim=80,
        hidden_channels=32,
        filter_channels=64,
        num_heads=2,
        num_encoder_layers=2,
        duration_filter_channels=32,
        decoder_hidden_channels=32,
        num_flow_blocks=4,
        num_coupling_layers=2,
        encoder_dropout=0.0,
        duration_dropout=0.0,
        decoder_dropout=0.0,
        spks=3,
        global_channels=32,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        idx = torch.randperm(len(data), generator=g)[:4].tolist()
        texts = [data[i][0] for i in idx]
        mels = [(data[i][1] - mean) / std for i in idx]
        loss, _, _ = model(
            text=torch.nn.utils.rnn.pad_sequence(texts, batch_first=True),
            text_lengths=torch.tensor([len(t) for t in texts]),
            feats=torch.nn.utils.rnn.pad_sequence(mels, batch_first=True),
            feats_lengths=torch.tensor([len(m) for m in mels]),
            sids=torch.tensor([[data[i][2]] for i in idx]),
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    model.eval()
    vocoder = Spectrogram2Waveform(
        n_fft=1024,
        n_shift=256,
        fs=FS,
        n_mels=80,
        fmin=0,
        fmax=8000,
        griffin_lim_iters=32,
    )
    # Voiced frames pooled over three sentences per sid: one Griffin-Lim sentence read by
    # DIO moves a 100 Hz voice by 12-30% (133 and 131 Hz against 102 recorded, on two
    # CPUs), so a single sentence is not a measurement.
    frames = {spk: [] for spk in spk2sid}
    for text, _, _ in data[:3]:
        for spk, sid in spk2sid.items():
            torch.manual_seed(0)
            with torch.no_grad():
                mel = model.inference(text, sids=torch.tensor([sid]))["feat_gen"]
            wav = np.asarray(vocoder(mel * std + mean), dtype=np.float32)
            frames[spk].append(speaker_scores.voiced_f0(wav, FS))
    f0 = {spk: float(np.mean(np.concatenate(v))) for spk, v in frames.items()}
    # The recordings are 1.97x apart; pooled, the sids were 2.0x apart (100 and 200 Hz).
    assert f0["f2"] > 1.5 * f0["us"], (f0, rec_f0)  # the voices are an octave apart
    for spk, other in (("us", "f2"), ("f2", "us")):
        # each sid sounds nearer its own recordings than the other speaker's (log pitch)
        own = abs(np.log(f0[spk] / rec_f0[spk]))
        assert own < abs(np.log(f0[spk] / rec_f0[other])), (f0, rec_f0)
