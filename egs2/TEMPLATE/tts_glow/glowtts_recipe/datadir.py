"""Kaldi-style data directories for the recipe tools: read, write atomically, report errors.

A data directory holds ``wav.scp``, ``text``, ``utt2spk`` and ``spk2utt`` (one
``<utt-id> <value>`` line each, sorted by id). Every writer goes through a temporary file
and a rename, so an interrupted stage never leaves a file that looks complete.
"""

import os
import sys
from pathlib import Path
from typing import Dict, Iterable, Tuple

DATA_FILES = ("wav.scp", "text", "utt2spk", "spk2utt")
# Optional per-utterance files that travel with a data directory through formatting and
# filtering: the corpus's languages and the recipe's speaker/language ids.
UTT_EXTRA_FILES = ("utt2lang", "utt2sid", "utt2lid")


def read_utt_extras(data_dir, keep) -> Dict[str, Dict[str, str]]:
    """The ``UTT_EXTRA_FILES`` present in ``data_dir``, restricted to the ids ``keep``."""
    out = {}
    for name in UTT_EXTRA_FILES:
        if (Path(data_dir) / name).is_file():
            values = read_kv(Path(data_dir) / name)
            missing = [u for u in keep if u not in values]
            if missing:
                raise DataError(f"{Path(data_dir) / name}: no entry for {missing[0]}")
            out[name] = {u: values[u] for u in keep}
    return out


class DataError(ValueError):
    """Bad input data; the message names the file and, where known, the line."""


def read_kv(path) -> Dict[str, str]:
    """Read ``<key> <value>`` lines into an ordered dict; duplicate keys are an error."""
    out: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            key, _, value = line.partition(" ")
            if key in out:
                raise DataError(f"{path}:{lineno}: duplicate id {key!r}")
            out[key] = value
    return out


def atomic_write(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_kv(path, items: Iterable[Tuple[str, str]]) -> None:
    """Write ``<key> <value>`` lines sorted by key (Kaldi's order), atomically."""
    atomic_write(path, "".join(f"{k} {v}\n" for k, v in sorted(items)))


def write_datadir(
    out_dir,
    wavs: Dict[str, str],
    texts: Dict[str, str],
    spks: Dict[str, str],
    extra: Dict[str, Dict[str, str]] = None,
) -> None:
    """Write a complete data directory (``extra``: more ``name -> {utt: value}`` files)."""
    out_dir = Path(out_dir)
    write_kv(out_dir / "wav.scp", wavs.items())
    write_kv(out_dir / "text", texts.items())
    write_kv(out_dir / "utt2spk", spks.items())
    spk2utt: Dict[str, list] = {}
    for utt in sorted(spks):
        spk2utt.setdefault(spks[utt], []).append(utt)
    write_kv(out_dir / "spk2utt", ((s, " ".join(u)) for s, u in spk2utt.items()))
    for name, values in (extra or {}).items():
        write_kv(out_dir / name, values.items())


def check_datadir(data_dir) -> Dict[str, str]:
    """Check that the files of a data directory exist and agree; return its ``text``."""
    data_dir = Path(data_dir)
    for name in DATA_FILES:
        if not (data_dir / name).is_file():
            raise DataError(
                f"{data_dir / name}: missing (run the earlier stages first)"
            )
    texts = read_kv(data_dir / "text")
    for name in ("wav.scp", "utt2spk"):
        keys = set(read_kv(data_dir / name))
        if keys != set(texts):
            diff = sorted(keys.symmetric_difference(texts))[:3]
            raise DataError(
                f"{data_dir / name}: ids differ from {data_dir / 'text'} "
                f"(e.g. {diff})"
            )
    if not texts:
        raise DataError(f"{data_dir}: no utterances")
    return texts


def main_guard(main):
    """Run ``main()`` and turn a DataError into one clear line on stderr and exit code 1."""
    try:
        main()
    except DataError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        sys.exit(1)
