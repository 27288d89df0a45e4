"""Synthesise an LJSpeech-layout corpus with espeak-ng: ``metadata.csv`` and ``wavs/*.wav``.

The sentence list is plain text, one sentence a line (``#`` comments and blank lines are
skipped), or ``id|...|text`` lines (the last field is the text), such as an LJSpeech
transcript file. espeak-ng runs in ``--nj`` parallel processes. The corpus is built in
``OUT.partial`` (a rerun after an interruption keeps the finished wavs) and renamed to
``OUT`` only when every wav is written, so a half-built corpus is never taken for one.

Several speakers (``--num_speakers N``, up to 8) and languages (``--languages en-us,de`` or
``--num_languages 2``): sentence ``i`` is spoken by speaker ``i mod N`` in language
``(i div N) mod L``, so every part of the corpus (and the held-out tail) is balanced.
Each speaker is an espeak-ng voice variant at its own pitch (``SPEAKERS``: mean F0 from
87 to 283 Hz, measured with pyworld on three sentences); the utterance id gets the
speaker as prefix (Kaldi's convention) and ``metadata.csv`` a 4th field, the speaker, and
with several languages a 5th, the espeak-ng language. One speaker and one language (the
default) is the plain single-speaker corpus.

    python -m glowtts_recipe.espeak_corpus --out_dir corpus/espeak --nj 2
    python -m glowtts_recipe.espeak_corpus --out_dir corpus/espeak_spk4 --num_speakers 4
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

# (speaker id, espeak-ng variant, pitch 0-99 or None for the voice's own) in the order
# speakers are added: any first N are spread over the range. Measured mean F0 (Hz, pyworld
# dio+stonemask on three sentences at 165 wpm): us 103, f2 205, m1 138, f5 283, m3 87,
# f4 162, klatt 120, f3 252. The first is the plain voice of the single-speaker corpus.
SPEAKERS = (
    ("us", None, None),
    ("f2", "f2", 55),
    ("m1", "m1", 85),
    ("f5", "f5", 80),
    ("m3", "m3", 25),
    ("f4", "f4", 40),
    ("klatt", "klatt", 65),
    ("f3", "f3", 70),
)
# --num_languages N takes the first N of these espeak-ng languages.
LANGUAGES = ("en-us", "de", "fr-fr", "es")


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
        raise DataError(
            "espeak-ng is not installed. Install it with "
            "`sudo apt-get install espeak-ng` (Debian/Ubuntu), then rerun."
        )
    return exe


def speaker_voices(num_speakers: int, languages: List[str]):
    """``[(speaker, language, espeak-ng voice, extra args)]`` for the corpus's voices."""
    if not 1 <= num_speakers <= len(SPEAKERS):
        raise DataError(
            f"--num_speakers must be 1..{len(SPEAKERS)}, got {num_speakers}"
        )
    if not languages or len(set(languages)) != len(languages):
        raise DataError(
            f"--languages must be distinct espeak-ng languages, got {languages}"
        )
    return [
        (
            spk,
            lang,
            lang + (f"+{variant}" if variant else ""),
            ["-p", str(pitch)] if pitch is not None else [],
        )
        for lang in languages
        for spk, variant, pitch in SPEAKERS[:num_speakers]
    ]


def assign_voices(items, num_speakers: int = 1, languages=("en-us",)):
    """``[(utt, text)] -> [(utt, text, speaker, language, voice, args)]``, round-robin.

    One speaker and one language keep the plain ids (the single-speaker corpus); otherwise
    the id is ``<speaker>_<id>`` and sentence ``i`` goes to speaker ``i mod N`` in language
    ``(i div N) mod L``.
    """
    voices = speaker_voices(num_speakers, list(languages))
    out = []
    for i, (utt, text) in enumerate(items):
        spk_i, lang_i = i % num_speakers, (i // num_speakers) % len(languages)
        spk, lang, voice, args = voices[lang_i * num_speakers + spk_i]
        if num_speakers > 1 or len(languages) > 1:
            utt = f"{spk}_{utt}"
        out.append((utt, text, spk, lang, voice, args))
    return out


def synthesise(
    exe: str, text: str, wav: Path, voice: str, speed: int, args: Tuple[str, ...] = ()
) -> None:
    """One sentence -> ``wav`` (written to a temporary name, then renamed)."""
    tmp = wav.with_name(f".{wav.name}.tmp")
    proc = subprocess.run(
        [exe, "-v", voice, *args, "-s", str(speed), "-w", str(tmp), "--stdin"],
        input=text,
        text=True,
        capture_output=True,
    )
    if proc.returncode != 0 or not tmp.is_file():
        raise RuntimeError(f"espeak-ng failed on {text!r}: {proc.stderr.strip()}")
    info = sf.info(str(tmp))
    if info.samplerate != ESPEAK_FS or info.frames == 0:
        raise RuntimeError(
            f"espeak-ng wrote {info.frames} samples at {info.samplerate} Hz "
            f"for {text!r} (expected {ESPEAK_FS} Hz audio)"
        )
    os.replace(tmp, wav)


def build_corpus(
    items,
    out_dir,
    nj: int = 2,
    voice: str = "en-us",
    speed: int = 165,
    quiet: bool = False,
    num_speakers: int = 1,
    languages=None,
) -> Path:
    """Speak ``[(utt, text)]`` into ``out_dir`` (see the module docstring).

    ``languages`` (default ``[voice]``) and ``num_speakers`` > 1 make a multi-speaker or
    multi-language corpus; otherwise every sentence is spoken by ``voice``.
    """
    out_dir = Path(out_dir)
    multi = num_speakers > 1 or (languages is not None and len(languages) > 1)
    plan = assign_voices(items, num_speakers, list(languages or [voice]))
    if (out_dir / "metadata.csv").is_file():
        if not quiet:
            print(f"espeak corpus {out_dir} exists: nothing to do", file=sys.stderr)
        return out_dir
    exe = find_espeak()
    work = out_dir.with_name(out_dir.name + ".partial")
    (work / "wavs").mkdir(parents=True, exist_ok=True)
    todo = [p for p in plan if not (work / "wavs" / f"{p[0]}.wav").is_file()]
    if not quiet:
        voices = sorted({" ".join([p[4], *p[5]]) for p in plan})
        print(
            f"synthesising {len(todo)} of {len(items)} sentences with espeak-ng "
            f"({', '.join(voices)}, {speed} wpm, nj={nj})",
            file=sys.stderr,
        )
    start, done, step = time.time(), 0, max(1, len(todo) // 10)
    with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
        futures = [
            pool.submit(synthesise, exe, t, work / "wavs" / f"{u}.wav", v, speed, a)
            for u, t, _, _, v, a in todo
        ]
        for future in as_completed(futures):
            future.result()
            done += 1
            if not quiet and (done % step == 0 or done == len(todo)):
                print(
                    f"  {done}/{len(todo)} wavs ({time.time() - start:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    many_langs = languages is not None and len(languages) > 1
    atomic_write(
        work / "metadata.csv",
        "".join(
            f"{u}|{t}|{t}"
            + (f"|{s}" if multi else "")
            + (f"|{lang}" if many_langs else "")
            + "\n"
            for u, t, s, lang, _, _ in plan
        ),
    )
    os.replace(work, out_dir)
    if not quiet:
        print(
            f"espeak corpus ready: {out_dir} ({len(items)} utterances)", file=sys.stderr
        )
    return out_dir


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out_dir", required=True, help="corpus directory to create")
    parser.add_argument(
        "--text_list", default=None, help="sentence list (default: the built-in list)"
    )
    parser.add_argument("--max_sentences", type=int, default=0, help="0: all")
    parser.add_argument(
        "--nj", type=int, default=2, help="parallel espeak-ng processes"
    )
    parser.add_argument(
        "--voice",
        default="en-us",
        help="espeak-ng language of a single-language corpus",
    )
    parser.add_argument("--speed", type=int, default=165, help="words per minute")
    parser.add_argument(
        "--num_speakers",
        type=int,
        default=1,
        help=f"1..{len(SPEAKERS)} voices that differ in pitch and timbre",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--languages",
        default=None,
        help="comma-separated espeak-ng languages, e.g. en-us,de",
    )
    group.add_argument(
        "--num_languages",
        type=int,
        default=None,
        help=f"the first N of {','.join(LANGUAGES)}",
    )
    args = parser.parse_args(cmd)
    languages = None
    if args.languages:
        languages = [x.strip() for x in args.languages.split(",") if x.strip()]
    elif args.num_languages is not None:
        if not 1 <= args.num_languages <= len(LANGUAGES):
            raise DataError(
                f"--num_languages must be 1..{len(LANGUAGES)}, "
                f"got {args.num_languages}"
            )
        languages = list(LANGUAGES[: args.num_languages])
    items = read_sentences(
        args.text_list or default_sentence_list(), args.max_sentences
    )
    build_corpus(
        items,
        args.out_dir,
        args.nj,
        args.voice,
        args.speed,
        num_speakers=args.num_speakers,
        languages=languages,
    )


if __name__ == "__main__":
    main_guard(main)
