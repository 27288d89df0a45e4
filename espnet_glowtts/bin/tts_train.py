# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""ESPnet's ``espnet2.bin.tts_train`` with ``glow_tts`` registered and atomic checkpoints.

Use it wherever a recipe runs ``python -m espnet2.bin.tts_train`` (also as the command
behind ``espnet2.bin.launch``). Worker processes started with "spawn" re-import this module
as their ``__main__``, so they see the registration too.

ESPnet's trainer writes ``checkpoint.pth`` in place: a run killed during that write leaves a
truncated file, and ``--resume true`` then fails with EOFError. Here every ``torch.save`` to
a path writes a temporary file and renames it, so a checkpoint on disk is always complete.
"""

import functools
import os

import torch

import espnet_glowtts  # noqa: F401  (registers glow_tts)
from espnet2.bin.tts_train import main


def atomic_torch_save() -> None:
    """Make ``torch.save(obj, path)`` write ``path`` atomically (file objects unchanged)."""
    original = torch.save
    if getattr(original, "_atomic", False):
        return

    @functools.wraps(original)
    def save(obj, f, *args, **kwargs):
        if not isinstance(f, (str, os.PathLike)):
            return original(obj, f, *args, **kwargs)
        tmp = f"{os.fspath(f)}.tmp.{os.getpid()}"
        try:
            original(obj, tmp, *args, **kwargs)
            os.replace(tmp, f)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    save._atomic = True
    torch.save = save


atomic_torch_save()

if __name__ == "__main__":
    main()
