"""Print the requirements of one extra of the installed espnet_glowtts, space-separated.

setup.py is the one place that names them; the Makefile installs extras that cannot be
built in pip's isolated build environment (parallel-wavegan) with
``pip install --no-build-isolation $(python tools/extra_requirements.py vocoder)``.
"""

import sys
from importlib.metadata import requires

from packaging.requirements import Requirement


def extra_requirements(extra: str) -> list:
    found = []
    for line in requires("espnet_glowtts") or []:
        req = Requirement(line)
        if req.marker is not None and req.marker.evaluate({"extra": extra}):
            req.marker = None
            found.append(str(req))
    return found


if __name__ == "__main__":
    reqs = extra_requirements(sys.argv[1])
    if not reqs:
        sys.exit(f"espnet_glowtts has no extra '{sys.argv[1]}' (or it is not installed)")
    print(" ".join(reqs))
