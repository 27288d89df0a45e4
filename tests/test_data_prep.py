"""The recipe's data tools: corpus checks, split, format, filter, espeak-ng corpus, download.

Everything runs in-process on corpora built here (a few short wavs), in seconds.
"""

import bz2
import hashlib
import http.server
import io
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from glowtts_recipe import (
    decode_report,
    espeak_corpus,
    fetch_corpus,
    filter_data,
    format_data,
    prepare_data,
)
from glowtts_recipe.datadir import DataError, main_guard, read_kv

FS = 22050


def make_corpus(root: Path, n: int = 6, fs: int = FS, seconds: float = 1.0) -> Path:
    """An LJSpeech-layout corpus of ``n`` noise wavs with short transcripts."""
    (root / "wavs").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(1, n + 1):
        utt = f"LJ001-{i:04d}"
        sf.write(
            str(root / "wavs" / f"{utt}.wav"),
            0.1 * rng.standard_normal(int(fs * seconds)),
            fs,
            subtype="PCM_16",
        )
        lines.append(f"{utt}|Raw text {i}.|hello world number {i}.")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def edit_line(meta: Path, lineno: int, new: str) -> None:
    lines = meta.read_text().splitlines()
    lines[lineno - 1] = new
    meta.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------
# Stage 1: prepare_data
def test_split_is_upstream_ljspeech(tmp_path):
    corpus = make_corpus(tmp_path / "c", n=10)
    prepare_data.main(
        [
            "--corpus_dir",
            str(corpus),
            "--out_dir",
            str(tmp_path / "data"),
            "--num_dev",
            "2",
            "--num_eval",
            "3",
        ]
    )
    sets = {
        s: list(read_kv(tmp_path / "data" / s / "text"))
        for s in ("tr_no_dev", "dev", "eval1")
    }
    assert sets["tr_no_dev"] == [f"LJ001-{i:04d}" for i in range(1, 6)]
    assert sets["dev"] == ["LJ001-0006", "LJ001-0007"]
    assert sets["eval1"] == ["LJ001-0008", "LJ001-0009", "LJ001-0010"]
    for s in sets:
        for name in ("wav.scp", "utt2spk", "spk2utt"):
            assert (tmp_path / "data" / s / name).is_file()
    assert read_kv(tmp_path / "data/dev/text")["LJ001-0006"] == "hello world number 6."


@pytest.mark.parametrize(
    "case, line, expected",
    [
        ("missing fields", "LJ001-0003|only two fields", "expected 3 fields"),
        (
            "empty transcript",
            "LJ001-0003|Raw text.|   ",
            "empty transcript for LJ001-0003",
        ),
        ("missing wav", "LJ001-0099|Raw.|text.", "LJ001-0099.wav is missing"),
    ],
)
def test_bad_metadata_line_names_file_and_line(tmp_path, case, line, expected):
    corpus = make_corpus(tmp_path / "c")
    edit_line(corpus / "metadata.csv", 3, line)
    with pytest.raises(DataError) as err:
        prepare_data.read_corpus(corpus, FS)
    assert f"{corpus.resolve() / 'metadata.csv'}:3:" in str(err.value)
    assert expected in str(err.value)


def test_unreadable_wav_is_an_error(tmp_path):
    corpus = make_corpus(tmp_path / "c")
    (corpus / "wavs" / "LJ001-0002.wav").write_bytes(b"RIFF, but not really a wav file")
    with pytest.raises(DataError) as err:
        prepare_data.read_corpus(corpus, FS)
    assert "metadata.csv:2:" in str(err.value)
    assert "LJ001-0002.wav is unreadable" in str(err.value)


def test_every_problem_is_listed(tmp_path):
    corpus = make_corpus(tmp_path / "c")
    edit_line(corpus / "metadata.csv", 2, "LJ001-0002|x|")
    (corpus / "wavs" / "LJ001-0005.wav").unlink()
    with pytest.raises(DataError) as err:
        prepare_data.read_corpus(corpus, FS)
    assert "2 problem(s)" in str(err.value)
    assert "metadata.csv:2:" in str(err.value) and "metadata.csv:5:" in str(err.value)


def test_cli_error_is_one_line_and_exit_1(tmp_path, capsys):
    corpus = make_corpus(tmp_path / "c")
    edit_line(corpus / "metadata.csv", 4, "no-fields")
    with pytest.raises(SystemExit) as code:
        main_guard(
            lambda: prepare_data.main(
                [
                    "--corpus_dir",
                    str(corpus),
                    "--out_dir",
                    str(tmp_path / "d"),
                    "--num_dev",
                    "1",
                    "--num_eval",
                    "1",
                ]
            )
        )
    assert code.value.code == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("ERROR: ")
        and "metadata.csv:4:" in err
        and "Traceback" not in err
    )


def test_wrong_sample_rate_is_resampled_with_a_notice(tmp_path, capsys):
    corpus = make_corpus(tmp_path / "c", n=4)
    wav = corpus / "wavs" / "LJ001-0002.wav"
    sf.write(str(wav), np.zeros((16000, 2)), 16000, subtype="PCM_16")  # 1 s, stereo
    prepare_data.main(
        [
            "--corpus_dir",
            str(corpus),
            "--out_dir",
            str(tmp_path / "data"),
            "--num_dev",
            "1",
            "--num_eval",
            "1",
        ]
    )
    notice = capsys.readouterr().err
    assert "NOTICE" in notice and "metadata.csv:2:" in notice and "16000 Hz" in notice
    format_data.main(
        [
            "--fs",
            str(FS),
            str(tmp_path / "data/tr_no_dev"),
            str(tmp_path / "dump/tr_no_dev"),
        ]
    )
    out = tmp_path / "dump/tr_no_dev"
    wavs, lengths = read_kv(out / "wav.scp"), read_kv(out / "utt2num_samples")
    info = sf.info(wavs["LJ001-0002"])
    assert (info.samplerate, info.channels) == (FS, 1)
    assert int(lengths["LJ001-0002"]) == info.frames == FS
    # A wav that already fits is used where it is, not copied.
    assert wavs["LJ001-0001"] == str((corpus / "wavs" / "LJ001-0001.wav").resolve())
    assert (out / "feats_type").read_text() == "raw\n"


# ---------------------------------------------------------------------------------------
# Stage 4: filter_data
def test_filter_counts_what_it_removes(tmp_path, capsys):
    src = tmp_path / "org"
    corpus = make_corpus(tmp_path / "c", n=5)
    prepare_data.main(
        [
            "--corpus_dir",
            str(corpus),
            "--out_dir",
            str(tmp_path / "data"),
            "--num_dev",
            "1",
            "--num_eval",
            "1",
        ]
    )
    format_data.main([str(tmp_path / "data/tr_no_dev"), str(src)])
    # LJ001-0001: 1 s, fine. LJ001-0002: 0.05 s, too short. Make the text of 0001 too long
    # for its frames: 87 frames at 1 s hold at most 43 tokens with blanks.
    sf.write(str(corpus / "wavs/LJ001-0002.wav"), np.zeros(1100), FS, subtype="PCM_16")
    lengths = read_kv(src / "utt2num_samples")
    lengths["LJ001-0002"] = "1100"
    (src / "utt2num_samples").write_text(
        "".join(f"{k} {v}\n" for k, v in lengths.items())
    )
    texts = read_kv(src / "text")
    texts["LJ001-0001"] = "abcdefghij " * 5
    (src / "text").write_text("".join(f"{k} {v}\n" for k, v in texts.items()))
    capsys.readouterr()
    filter_data.main(
        [
            "--token_type",
            "char",
            "--g2p",
            "none",
            "--cleaner",
            "none",
            str(src),
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert (
        "kept 1 of 3 utterances (removed 2: 1 too short, 1 fewer frames than tokens)"
        in err
    )
    assert list(read_kv(tmp_path / "out/text")) == ["LJ001-0003"]
    assert list(read_kv(tmp_path / "out/utt2num_samples")) == ["LJ001-0003"]


def test_filter_reads_add_blank_from_the_config(tmp_path):
    conf = tmp_path / "train.yaml"
    conf.write_text(
        "tts: glow_tts\ntts_conf:\n    add_blank: false\n    squeeze_factor: 4\n"
    )
    assert filter_data.model_token_rules(conf) == (False, 4)
    assert filter_data.model_token_rules(None) == (True, 2)  # GlowTTS's own defaults
    conf.write_text("tts: fastspeech2\n")
    assert filter_data.model_token_rules(conf) == (False, 1)  # no blanks, no squeeze


# ---------------------------------------------------------------------------------------
# Stage 8: unseen tokens
def test_unseen_tokens_warn_at_decode_time(tmp_path, capsys):
    data = tmp_path / "eval1"
    data.mkdir()
    (data / "text").write_text("u1 abc\nu2 abz\n")
    conf = dict(
        token_type="char",
        g2p=None,
        cleaner=None,
        token_list=["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"],
    )
    assert decode_report.check_unseen(conf, [data]) == 1
    err = capsys.readouterr().err
    assert "u2" in err and "['z']" in err and "<unk>" in err and "u1" not in err


# ---------------------------------------------------------------------------------------
# espeak-ng corpus
def test_sentence_list_formats(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("# comment\nFirst one.\n\nSecond one.\n")
    assert espeak_corpus.read_sentences(plain) == [
        ("ESPK-00001", "First one."),
        ("ESPK-00002", "Second one."),
    ]
    psv = tmp_path / "t.psv"
    psv.write_text(
        "LJ001-0001|train|Printing, in the only sense.\nLJ001-0002|test|Two.\n"
    )
    assert espeak_corpus.read_sentences(psv, max_sentences=1) == [
        ("LJ001-0001", "Printing, in the only sense.")
    ]
    builtin = espeak_corpus.read_sentences(espeak_corpus.default_sentence_list())
    assert len(builtin) >= 200
    assert not any(ch.isdigit() for _, t in builtin for ch in t)


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"
)
def test_espeak_corpus_is_ljspeech_layout(tmp_path):
    items = [
        ("ESPK-00001", "Hello there."),
        ("ESPK-00002", "A second sentence."),
        ("ESPK-00003", "And a third."),
    ]
    out = espeak_corpus.build_corpus(items, tmp_path / "espeak", nj=2, quiet=True)
    meta = (out / "metadata.csv").read_text().splitlines()
    assert meta[0] == "ESPK-00001|Hello there.|Hello there."
    for utt, _ in items:
        info = sf.info(str(out / "wavs" / f"{utt}.wav"))
        assert (info.samplerate, info.channels) == (FS, 1) and info.frames > FS // 4
    assert not (tmp_path / "espeak.partial").exists()


def test_partial_espeak_corpus_is_not_taken_for_one(tmp_path):
    (tmp_path / "espeak.partial" / "wavs").mkdir(parents=True)
    with pytest.raises(DataError):
        prepare_data.read_corpus(tmp_path / "espeak", FS)


def test_missing_espeak_says_how_to_install(monkeypatch):
    monkeypatch.setattr(espeak_corpus.shutil, "which", lambda _: None)
    with pytest.raises(DataError, match="apt-get install espeak-ng"):
        espeak_corpus.find_espeak()


# ---------------------------------------------------------------------------------------
# LJSpeech download, against a local server
def ljspeech_archive(tmp_path) -> bytes:
    corpus = make_corpus(tmp_path / "src" / "LJSpeech-1.1", n=4, seconds=0.5)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(corpus, arcname="LJSpeech-1.1")
    return bz2.compress(buf.getvalue())


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_verify_extract(tmp_path, http_server):
    root, url = http_server
    data = ljspeech_archive(tmp_path)
    (root / "LJSpeech-1.1.tar.bz2").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    dl = tmp_path / "downloads"
    target = fetch_corpus.fetch(f"{url}/LJSpeech-1.1.tar.bz2", sha, dl, quiet=True)
    assert target == dl / "LJSpeech-1.1" and (target / "metadata.csv").is_file()
    assert sorted(p.name for p in dl.iterdir()) == [
        "LJSpeech-1.1",
        "LJSpeech-1.1.tar.bz2",
    ]
    prepare_data.main(
        [
            "--corpus_dir",
            str(target),
            "--out_dir",
            str(tmp_path / "data"),
            "--num_dev",
            "1",
            "--num_eval",
            "1",
        ]
    )
    assert len(read_kv(tmp_path / "data/tr_no_dev/text")) == 2
    # A rerun finds the extracted corpus and downloads nothing.
    (root / "LJSpeech-1.1.tar.bz2").unlink()
    assert (
        fetch_corpus.fetch(f"{url}/LJSpeech-1.1.tar.bz2", sha, dl, quiet=True) == target
    )


def test_bad_checksum_is_never_extracted(tmp_path, http_server):
    root, url = http_server
    (root / "LJSpeech-1.1.tar.bz2").write_bytes(ljspeech_archive(tmp_path))
    dl = tmp_path / "downloads"
    with pytest.raises(DataError, match="SHA-256"):
        fetch_corpus.fetch(f"{url}/LJSpeech-1.1.tar.bz2", "0" * 64, dl, quiet=True)
    assert not (dl / "LJSpeech-1.1").exists()
    assert not (dl / "LJSpeech-1.1.tar.bz2").exists()
    assert (dl / "LJSpeech-1.1.tar.bz2.bad").exists()


def test_half_downloaded_archive_is_downloaded_again(tmp_path, http_server):
    root, url = http_server
    data = ljspeech_archive(tmp_path)
    (root / "LJSpeech-1.1.tar.bz2").write_bytes(data)
    dl = tmp_path / "downloads"
    dl.mkdir()
    (dl / "LJSpeech-1.1.tar.bz2").write_bytes(
        data[: len(data) // 2]
    )  # an interrupted copy
    (dl / ".LJSpeech-1.1.extracting").mkdir()  # and an interrupted extraction
    target = fetch_corpus.fetch(
        f"{url}/LJSpeech-1.1.tar.bz2", hashlib.sha256(data).hexdigest(), dl, quiet=True
    )
    assert len((target / "metadata.csv").read_text().splitlines()) == 4
    assert not (dl / ".LJSpeech-1.1.extracting").exists()


def test_unreachable_server_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main_guard(
            lambda: fetch_corpus.main(
                [
                    "--download_dir",
                    str(tmp_path),
                    "--url",
                    "http://127.0.0.1:9/x.tar.bz2",
                ]
            )
        )
    assert "ERROR: cannot fetch http://127.0.0.1:9/x.tar.bz2" in capsys.readouterr().err
