"""Several speakers and languages through the whole recipe, on a tiny espeak-ng corpus.

Two voices and two languages, 12 sentences, a tiny model: stages 1-8 with --use_sid,
--use_lid and --use_xvector (resemblyzer, offline) at once. Checks what ESPnet users rely
on: the ids and x-vectors of stage 2+, a model built with as many speaker/language entries
as the data has, decoding with each utterance's own speaker, per-speaker scores, and a
packed zip that speaks with sids=/lids=/spembs= through Text2Speech.
"""

import json
import shutil

import numpy as np
import pytest
from test_recipe import DECODE, EXP, TINY, copy_recipe, env

pytest.importorskip("resemblyzer")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"
    ),
]

ARGS = [
    "--corpus",
    "espeak",
    "--max_sentences",
    "12",
    "--num_dev",
    "2",
    "--num_eval",
    "4",
    "--num_speakers",
    "2",
    "--num_languages",
    "2",
    "--use_sid",
    "true",
    "--use_lid",
    "true",
    "--use_xvector",
    "true",
    "--train_config",
    "conf/tiny.yaml",
    "--nj",
    "1",
    "--inference_nj",
    "1",
    "--score_seeds",
    "1",
    "--score_asr",
    "none",
]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    import subprocess

    root = tmp_path_factory.mktemp("speakers") / "tts_glow"
    copy_recipe(root)
    (root / "conf" / "tiny.yaml").write_text(TINY)
    proc = subprocess.run(
        ["./run.sh", *ARGS],
        cwd=root,
        env=env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-5000:]
    return root


def read(path) -> dict:
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())


def test_ids_xvectors_and_the_model_size_follow_the_data(recipe, monkeypatch):
    import kaldiio

    monkeypatch.chdir(
        recipe
    )  # scp files name their arks relative to the recipe, as ESPnet
    import yaml

    org = recipe / "dump/raw/org/tr_no_dev"
    spk2sid, lang2lid = read(org / "spk2sid"), read(org / "lang2lid")
    assert spk2sid["<unk>"] == "0" and len(spk2sid) == 3  # two voices
    assert lang2lid["<unk>"] == "0" and len(lang2lid) == 3  # two languages
    xvectors = kaldiio.load_scp(str(recipe / "dump/xvector/tr_no_dev/xvector.scp"))
    assert set(xvectors) == set(read(org.parent.parent / "tr_no_dev" / "utt2spk"))
    assert {v.shape for v in xvectors.values()} == {(256,)}
    conf = yaml.safe_load((recipe / EXP / "config.yaml").read_text())["tts_conf"]
    assert (conf["spks"], conf["langs"], conf["spk_embed_dim"]) == (3, 3, 256)


def test_decoding_used_each_utterances_own_speaker_and_scored_per_speaker(recipe):
    decode = recipe / DECODE / "eval1"
    utt2spk = read(recipe / "dump/raw/eval1/utt2spk")
    assert len(set(utt2spk.values())) == 2  # eval1 is balanced over the two voices
    assert set(p.stem for p in (decode / "wav").glob("*.wav")) == set(utt2spk)
    scores = json.loads((decode / "speaker_scores.json").read_text())
    assert set(scores["speakers"]) == set(utt2spk.values())
    assert 0.0 <= scores["nearest_speaker_accuracy"] <= 1.0
    assert len(list((decode / "all_speakers").rglob("*.wav"))) >= 2


def test_packed_model_speaks_with_sids_lids_and_spembs(recipe, monkeypatch):
    import kaldiio

    monkeypatch.chdir(recipe)

    from espnet2.bin.tts_inference import Text2Speech

    import espnet_glowtts  # noqa: F401  (registers glow_tts)

    zips = list((recipe / EXP).glob("*.zip"))
    assert len(zips) == 1
    tts = Text2Speech.from_pretrained(model_tag=str(zips[0]), noise_scale=0.0)
    spembs = next(
        iter(
            kaldiio.load_scp(
                str(recipe / "dump/xvector/tr_no_dev/spk_xvector.scp")
            ).values()
        )
    )
    outs = [
        tts("Hello there.", sids=np.array([sid]), lids=np.array([1]), spembs=spembs)
        for sid in (1, 2)
    ]
    assert all(o["wav"].numel() > 0 for o in outs)
    # Different speaker ids give different features for the same text.
    a, b = (o["feat_gen"] for o in outs)
    n = min(len(a), len(b))
    assert float((a[:n] - b[:n]).abs().mean()) > 1e-4
    with pytest.raises(ValueError, match="sid"):
        tts("Hello there.", sids=np.array([7]), lids=np.array([1]), spembs=spembs)
    assert (recipe / EXP / "packed_check.wav").is_file()
