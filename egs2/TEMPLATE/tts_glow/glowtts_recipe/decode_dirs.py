"""Stage 7: the outputs of ``espnet2.bin.tts_inference`` jobs -> ESPnet's decoding layout.

``collect``: tts.sh decodes all sets in one pass, once per seed, into a work directory
(``<work>/seed<k>/output.<job>/{wav,norm,denorm,durations,speech_shape}``). This splits
them per set into ESPnet's layout (that of egs2/TEMPLATE/tts1/tts.sh)::

    <decode_dir>/<set>/wav/<utt>.wav, wav/wav.scp     draw 1 (--seed 1)
    <decode_dir>/<set>/norm/feats.scp, denorm/feats.scp
    <decode_dir>/<set>/durations, speech_shape         plain files, sorted by key
    <decode_dir>/<set>/wav_seed<k>/<utt>.wav, wav.scp  draws k >= 2 (wavs only)

Each set's new outputs are assembled beside it and then replace only those names, so
scores, plots and anything else in the decoding directory stay until they are rewritten.
Finally the work directory becomes ``<decode_dir>/log``. With ``--teacher_forcing`` the
durations become a teacher dump for FastSpeech2 (``--teacher_dumpdir``): one value per
input token plus 0 for the ``<sos/eos>`` FastSpeech2 appends, summing to the frames ESPnet
extracts from the wav (``samples // n_shift + 1``), which is checked.

``check_teacher DURATIONS TEXT``: a teacher dump holds durations for exactly the
utterances of a data set (what FastSpeech2's data loader needs).

    python -m glowtts_recipe.decode_dirs collect --work_dir D/log.tmp --decode_dir D \\
        dev=dump/raw/dev eval1=dump/raw/eval1
    python -m glowtts_recipe.decode_dirs check_teacher T/tr_no_dev/durations \\
        dump/raw/tr_no_dev/text
"""

import argparse
import shutil
import sys
from pathlib import Path
from typing import Dict, List

from glowtts_recipe.datadir import DataError, atomic_write, main_guard, read_kv


def _outputs(seed_dir: Path, part: str) -> Dict[str, Path]:
    """``utt -> file`` of every job's ``part`` (wav: ``<utt>.wav``; norm/denorm: ``.npy``)."""
    found = {}
    for job in sorted(seed_dir.glob("output.*")):
        for f in (job / part).glob("*.wav" if part == "wav" else "*.npy"):
            found[f.stem] = f
    return found


def _lines(seed_dir: Path, name: str) -> Dict[str, str]:
    """``utt -> value`` of every job's ``<name>/<name>`` file (durations, speech_shape)."""
    out = {}
    for job in sorted(seed_dir.glob("output.*")):
        if (job / name / name).is_file():
            out.update(read_kv(job / name / name))
    return out


def teacher_line(utt: str, durations: str, num_samples: int, n_shift: int) -> str:
    """``utt d_1 ... d_N 0``, checked to sum to the utterance's feature frames."""
    d = [int(x) for x in durations.split()]
    frames = num_samples // n_shift + 1
    if sum(d) != frames:
        raise DataError(
            f"{utt}: teacher durations sum to {sum(d)}, its features have "
            f"{frames} frames"
        )
    return " ".join([utt, *map(str, d), "0"])


def assemble(
    work: Path,
    set_name: str,
    data_dir: Path,
    new: Path,
    final: Path,
    seeds: List[Path],
    teacher_n_shift: int = 0,
) -> int:
    """Build ``new`` (to become ``final``) for the utterances of ``data_dir/text``."""
    keys = sorted(read_kv(data_dir / "text"))
    first = seeds[0]
    wavs, durations = _outputs(first, "wav"), _lines(first, "durations")
    missing = [u for u in keys if u not in wavs]
    if missing:
        raise DataError(
            f"{set_name}: no decoded wav for {len(missing)} utterance(s), e.g. "
            f"{missing[0]} (see {first}/tts_inference.*.log)"
        )
    new.mkdir(parents=True)
    for part in ("norm", "denorm"):
        feats = _outputs(first, part)
        if not feats:
            continue
        (new / part).mkdir()
        for u in keys:
            shutil.move(feats[u], new / part / f"{u}.npy")
        atomic_write(
            new / part / "feats.scp",
            "".join(f"{u} {final / part / u}.npy\n" for u in keys),
        )
    if durations:
        if teacher_n_shift:
            samples = read_kv(data_dir / "utt2num_samples")
            text = "".join(
                teacher_line(u, durations[u], int(samples[u]), teacher_n_shift) + "\n"
                for u in keys
            )
        else:
            text = "".join(f"{u} {durations[u]}\n" for u in keys)
        atomic_write(new / "durations", text)
    shapes = _lines(first, "speech_shape")
    if shapes:
        atomic_write(new / "speech_shape", "".join(f"{u} {shapes[u]}\n" for u in keys))
    for k, seed_dir in enumerate(seeds, start=1):
        name = "wav" if k == 1 else f"wav_seed{k}"
        found = wavs if k == 1 else _outputs(seed_dir, "wav")
        (new / name).mkdir()
        for u in keys:
            if u not in found:
                raise DataError(
                    f"{set_name}: draw {k}: no wav for {u} (see {seed_dir})"
                )
            shutil.move(found[u], new / name / f"{u}.wav")
        atomic_write(
            new / name / "wav.scp",
            "".join(f"{u} {final / name / u}.wav\n" for u in keys),
        )
    return len(keys)


def replace_outputs(new: Path, final: Path) -> None:
    """Move each entry of ``new`` into ``final`` (replacing it); drop stale draws."""
    final.mkdir(parents=True, exist_ok=True)
    old = final.parent / f".old.{final.name}"
    shutil.rmtree(old, ignore_errors=True)
    old.mkdir()
    stale = [p for p in final.glob("wav_seed*") if not (new / p.name).exists()]
    for p in stale + [
        final / n.name for n in new.iterdir() if (final / n.name).exists()
    ]:
        p.rename(old / p.name)
    for n in new.iterdir():
        n.rename(final / n.name)
    shutil.rmtree(old)
    new.rmdir()


def collect(work_dir: str, decode_dir: str, sets: List[str], teacher_n_shift: int = 0):
    work, decode = Path(work_dir), Path(decode_dir)
    seeds = sorted(work.glob("seed*"), key=lambda p: int(p.name[4:]))
    if not seeds:
        raise DataError(f"{work}: no seed*/ directories (nothing was decoded)")
    for spec in sets:
        name, _, data_dir = spec.partition("=")
        new = decode / f".new.{name}"
        shutil.rmtree(new, ignore_errors=True)
        n = assemble(
            work, name, Path(data_dir), new, decode / name, seeds, teacher_n_shift
        )
        replace_outputs(new, decode / name)
        what = "teacher durations (FastSpeech2 format), " if teacher_n_shift else ""
        print(
            f"{decode / name}: {n} utterances: {what}wav"
            + (
                f" + {len(seeds) - 1} more draw(s) in wav_seed*"
                if len(seeds) > 1
                else ""
            ),
            file=sys.stderr,
        )
    for job in work.glob(
        "seed*/output.*"
    ):  # what the sets did not take (nothing, normally)
        for part in ("wav", "norm", "denorm"):
            shutil.rmtree(job / part, ignore_errors=True)
    log_dir = decode / "log"
    if log_dir.exists():
        shutil.rmtree(log_dir)
    work.rename(log_dir)


def check_teacher(durations: str, text: str) -> None:
    path = Path(durations)
    if not path.is_file():
        raise DataError(
            f"{path}: missing: the teacher dump has no durations for this set "
            "(decode the set with --inference_args '--use_teacher_forcing true')"
        )
    have, want = set(read_kv(path)), set(read_kv(text))
    if have != want:
        extra, lack = sorted(have - want), sorted(want - have)
        raise DataError(
            f"{path}: its utterances differ from {text}'s: {len(lack)} missing"
            f"{' (e.g. ' + lack[0] + ')' if lack else ''}, {len(extra)} extra"
            f"{' (e.g. ' + extra[0] + ')' if extra else ''}"
        )


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("collect", help="work directory -> ESPnet's per-set layout")
    p.add_argument("--work_dir", required=True)
    p.add_argument("--decode_dir", required=True)
    p.add_argument(
        "--teacher_forcing",
        action="store_true",
        help="write the durations as a FastSpeech2 teacher dump",
    )
    p.add_argument("--n_shift", type=int, default=256)
    p.add_argument("sets", nargs="+", metavar="SET=DATA_DIR")
    p = sub.add_parser("check_teacher", help="a teacher dump matches a data set")
    p.add_argument("durations")
    p.add_argument("text")
    args = parser.parse_args(cmd)
    if args.command == "collect":
        collect(
            args.work_dir,
            args.decode_dir,
            args.sets,
            args.n_shift if args.teacher_forcing else 0,
        )
    else:
        check_teacher(args.durations, args.text)


if __name__ == "__main__":
    main_guard(main)
