"""Synthesise an LJSpeech-layout corpus with espeak-ng: ``metadata.csv`` and ``wavs/*.wav``.

The sentence list is plain text, one sentence a line (``#`` comments and blank lines are
skipped), or ``id|...|text`` lines (the last field is the text), such as an LJSpeech
transcript file. espeak-ng runs in ``--nj`` parallel processes. The corpus is built in
``OUT.partial`` (a rerun after an interruption keeps the finished wavs) and renamed to
``OUT`` only when every wav is written, so a half-built corpus is never taken for one.

    python -m glowtts_recipe.espeak_corpus --out_dir corpus/espeak --nj 2
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from importlib import resources
from pathlib import Path
from typing import List, Tuple

import soundfile as sf

from glowtts_recipe.datadir import DataError, atomic_write, main_guard

ESPEAK_FS = 22050  # espeak-ng's native output rate


def default_sentence_list() -> Path:
    return Path(str(resources.files("glowtts_recipe") / "data" / "sentences.txt"))


def read_sentences(path, max_sentences: int = 0) -> List[Tuple[str, str]]:
    """Return ``[(utt_id, text)]`` from a sentence list (see the module docstring)."""
    items = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "|" in line:
                fields = line.split("|")
                utt, text = fields[0].strip(), fields[-1].strip()
            else:
                utt, text = f"ESPK-{len(items) + 1:05d}", line
            if not utt or not text:
                raise DataError(f"{path}:{lineno}: empty id or text in {line!r}")
            if "|" in text or "\n" in text:
                raise DataError(f"{path}:{lineno}: text may not contain '|'")
            items.append((utt, " ".join(text.split())))
            if max_sentences and len(items) >= max_sentences:
                break
    if not items:
        raise DataError(f"{path}: no sentences")
    ids = [u for u, _ in items]
    if len(set(ids)) != len(ids):
        dup = next(u for u in ids if ids.count(u) > 1)
        raise DataError(f"{path}: duplicate id {dup!r}")
    return items


def find_espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DataError("espeak-ng is not installed. Install it with "
                        "`sudo apt-get install espeak-ng` (Debian/Ubuntu), then rerun.")
    return exe


def synthesise(exe: str, text: str, wav: Path, voice: str, speed: int) -> None:
    """One sentence -> ``wav`` (written to a temporary name, then renamed)."""
    tmp = wav.with_name(f".{wav.name}.tmp")
    proc = subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(tmp), "--stdin"],
                          input=text, text=True, capture_output=True)
    if proc.returncode != 0 or not tmp.is_file():
        raise RuntimeError(f"espeak-ng failed on {text!r}: {proc.stderr.strip()}")
    info = sf.info(str(tmp))
    if info.samplerate != ESPEAK_FS or info.frames == 0:
        raise RuntimeError(f"espeak-ng wrote {info.frames} samples at {info.samplerate} Hz "
                           f"for {text!r} (expected {ESPEAK_FS} Hz audio)")
    os.replace(tmp, wav)


def build_corpus(items, out_dir, nj: int = 2, voice: str = "en-us", speed: int = 165,
                 quiet: bool = False) -> Path:
    out_dir = Path(out_dir)
    if (out_dir / "metadata.csv").is_file():
        if not quiet:
            print(f"espeak corpus {out_dir} exists: nothing to do", file=sys.stderr)
        return out_dir
    exe = find_espeak()
    work = out_dir.with_name(out_dir.name + ".partial")
    (work / "wavs").mkdir(parents=True, exist_ok=True)
    todo = [(u, t) for u, t in items if not (work / "wavs" / f"{u}.wav").is_file()]
    if not quiet:
        print(f"synthesising {len(todo)} of {len(items)} sentences with espeak-ng "
              f"({voice}, {speed} wpm, nj={nj})", file=sys.stderr)
    start, done, step = time.time(), 0, max(1, len(todo) // 10)
    with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
        futures = [pool.submit(synthesise, exe, t, work / "wavs" / f"{u}.wav", voice, speed)
                   for u, t in todo]
        for future in as_completed(futures):
            future.result()
            done += 1
            if not quiet and (done % step == 0 or done == len(todo)):
                print(f"  {done}/{len(todo)} wavs ({time.time() - start:.0f} s)",
                      file=sys.stderr, flush=True)
    atomic_write(work / "metadata.csv", "".join(f"{u}|{t}|{t}\n" for u, t in items))
    os.replace(work, out_dir)
    if not quiet:
        print(f"espeak corpus ready: {out_dir} ({len(items)} utterances)", file=sys.stderr)
    return out_dir


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", required=True, help="corpus directory to create")
    parser.add_argument("--text_list", default=None,
                        help="sentence list (default: the built-in list)")
    parser.add_argument("--max_sentences", type=int, default=0, help="0: all")
    parser.add_argument("--nj", type=int, default=2, help="parallel espeak-ng processes")
    parser.add_argument("--voice", default="en-us")
    parser.add_argument("--speed", type=int, default=165, help="words per minute")
    args = parser.parse_args(cmd)
    items = read_sentences(args.text_list or default_sentence_list(), args.max_sentences)
    build_corpus(items, args.out_dir, args.nj, args.voice, args.speed)


if __name__ == "__main__":
    main_guard(main)
