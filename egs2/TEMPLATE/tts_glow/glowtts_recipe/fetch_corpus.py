"""Download LJSpeech, verify its SHA-256 and extract it atomically.

The archive is downloaded to ``<name>.part`` and renamed only after its checksum matches;
it is extracted into a temporary directory that is renamed to ``<download_dir>/<root>``
only when the extraction finished and ``metadata.csv`` is there. A half-downloaded archive
or a half-extracted corpus is therefore never taken for a complete one; a rerun picks up
where the last one stopped (a verified archive is not downloaded again).

    python -m glowtts_recipe.fetch_corpus --download_dir downloads
"""

import argparse
import hashlib
import os
import shutil
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

from glowtts_recipe.datadir import DataError, main_guard

LJSPEECH_URL = "https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
LJSPEECH_SHA256 = "be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5"
LJSPEECH_ROOT = "LJSpeech-1.1"


def sha256sum(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, quiet: bool = False) -> None:
    """Fetch ``url`` to ``dest.part`` with progress, then rename it to ``dest``."""
    part = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0)
        done, last = 0, 0.0
        while block := resp.read(1 << 20):
            out.write(block)
            done += len(block)
            if not quiet and time.time() - last > 5:
                pct = f" ({100 * done / total:.0f}%)" if total else ""
                print(
                    f"  downloaded {done / 2**20:.0f} MiB{pct}",
                    file=sys.stderr,
                    flush=True,
                )
                last = time.time()
    if total and done != total:
        raise DataError(f"{url}: got {done} of {total} bytes; rerun to download again")
    os.replace(part, dest)


def fetch(
    url: str, sha256: str, download_dir, root: str = LJSPEECH_ROOT, quiet: bool = False
) -> Path:
    """Return ``<download_dir>/<root>``, downloading and extracting it when needed."""
    download_dir = Path(download_dir)
    target = download_dir / root
    if (target / "metadata.csv").is_file():
        if not quiet:
            print(f"{target} is already extracted", file=sys.stderr)
        return target
    download_dir.mkdir(parents=True, exist_ok=True)
    archive = download_dir / Path(url.split("?")[0]).name
    if archive.is_file() and sha256sum(archive) != sha256:
        print(f"{archive}: checksum mismatch, downloading again", file=sys.stderr)
        archive.unlink()
    if not archive.is_file():
        if not quiet:
            print(f"downloading {url} -> {archive}", file=sys.stderr)
        download(url, archive, quiet)
        digest = sha256sum(archive)
        if digest != sha256:
            bad = archive.with_name(archive.name + ".bad")
            os.replace(archive, bad)
            raise DataError(
                f"{url}: SHA-256 {digest} does not match the expected {sha256} "
                f"(kept as {bad} for inspection)"
            )
    tmp = download_dir / f".{root}.extracting"
    shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        print(f"extracting {archive}", file=sys.stderr)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    if not (tmp / root / "metadata.csv").is_file():
        raise DataError(f"{archive}: no {root}/metadata.csv inside the archive")
    os.replace(tmp / root, target)
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--download_dir", default="downloads")
    parser.add_argument("--url", default=LJSPEECH_URL)
    parser.add_argument("--sha256", default=LJSPEECH_SHA256)
    parser.add_argument(
        "--root", default=LJSPEECH_ROOT, help="top directory in the archive"
    )
    args = parser.parse_args(cmd)
    try:
        print(fetch(args.url, args.sha256, args.download_dir, args.root))
    except OSError as e:  # network or disk: say what failed, no traceback
        raise DataError(f"cannot fetch {args.url}: {e}")


if __name__ == "__main__":
    main_guard(main)
