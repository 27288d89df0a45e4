"""tts.sh stage 2+ (ESPnet's speaker and language ids) on a hand-made data directory.

ESPnet numbers speakers (languages) of the training set from 1 in sorted order, with 0 for
<unk>, in dump/raw/org/<train_set>/spk2sid (lang2lid), and writes utt2sid (utt2lid) for
every set. An utterance of another set whose speaker the training set lacks stops stage 2
with a one-line error. Only stage 2 runs: seconds."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from test_recipe import copy_recipe

SETS = {
    "tr_no_dev": [("a1", "spkB", "en"), ("a2", "spkA", "de"), ("a3", "spkB", "en")],
    "dev": [("d1", "spkA", "en")],
    "eval1": [("e1", "spkB", "de")],
}


def make_recipe(root: Path, sets) -> Path:
    recipe = copy_recipe(root / "tts_glow")
    for name, utts in sets.items():
        d = recipe / "data" / name
        d.mkdir(parents=True)
        for f, col in (
            ("wav.scp", None),
            ("text", None),
            ("utt2spk", 1),
            ("utt2lang", 2),
        ):
            lines = []
            for u in utts:
                if f == "wav.scp":
                    sf.write(
                        root / f"{u[0]}.wav", 0.1 * np.sin(np.arange(8000) / 5.0), 22050
                    )
                    lines.append(f"{u[0]} {root / u[0]}.wav")
                else:
                    lines.append(f"{u[0]} {'hello there' if col is None else u[col]}")
            (d / f).write_text("\n".join(lines) + "\n")
        spks = sorted({u[1] for u in utts})
        (d / "spk2utt").write_text(
            "".join(f"{s} {' '.join(u[0] for u in utts if u[1] == s)}\n" for s in spks)
        )
    return recipe


def stage2(recipe: Path):
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    return subprocess.run(
        [
            "./tts.sh",
            "--stage",
            "2",
            "--stop_stage",
            "2",
            "--use_sid",
            "true",
            "--use_lid",
            "true",
        ],
        cwd=recipe,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
    )


def read(path: Path) -> dict:
    return dict(line.split() for line in path.read_text().splitlines())


def test_speaker_and_language_ids_as_espnet_numbers_them(tmp_path):
    recipe = make_recipe(tmp_path, SETS)
    proc = stage2(recipe)
    assert proc.returncode == 0, proc.stdout[-3000:]
    raw = recipe / "dump/raw"
    assert (raw / "org/tr_no_dev/spk2sid").read_text() == "<unk> 0\nspkA 1\nspkB 2\n"
    assert (raw / "org/tr_no_dev/lang2lid").read_text() == "<unk> 0\nde 1\nen 2\n"
    assert read(raw / "org/tr_no_dev/utt2sid") == {"a1": "2", "a2": "1", "a3": "2"}
    assert read(raw / "org/dev/utt2sid") == {"d1": "1"}
    assert read(raw / "eval1/utt2sid") == {"e1": "2"}
    assert read(raw / "eval1/utt2lid") == {"e1": "1"}


def test_a_test_speaker_unknown_to_training_is_a_one_line_error(tmp_path):
    sets = dict(SETS, eval1=[("e1", "spkC", "en")])
    proc = stage2(make_recipe(tmp_path, sets))
    assert proc.returncode != 0
    errors = [x for x in proc.stdout.splitlines() if "ERROR" in x]
    assert (
        len(errors) == 1 and "speaker spkC of utterance e1" in errors[0]
    ), proc.stdout[-2000:]
    assert "eval1/utt2spk" in errors[0]
