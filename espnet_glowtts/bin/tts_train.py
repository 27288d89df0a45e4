# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

r"""ESPnet's ``espnet2.bin.tts_train`` with ``glow_tts`` registered and atomic checkpoints.

Use it wherever a recipe runs ``python -m espnet2.bin.tts_train`` (also as the command
behind ``espnet2.bin.launch``). Worker processes started with "spawn" re-import this module
as their ``__main__``, so they see the registration too.

ESPnet's trainer writes ``checkpoint.pth`` in place: a run killed during that write leaves a
truncated file, and ``--resume true`` then fails with EOFError. Here every ``torch.save`` to
a path writes a temporary file and renames it, so a checkpoint on disk is always complete.

Usage (ESPnet's ``tts_train`` options; ``--help`` lists them; ``--tts glow_tts`` selects
this model, ``--tts_conf`` takes :class:`espnet_glowtts.GlowTTS`'s arguments; ``tts.sh``
stages 5-6 show complete commands)::

    python -m espnet_glowtts.bin.tts_train --config conf/train.yaml \
        --token_type phn --token_list dump/token_list/phn/tokens.txt \
        --train_data_path_and_name_and_type dump/raw/tr_no_dev/text,text,text \
        --train_data_path_and_name_and_type dump/raw/tr_no_dev/wav.scp,speech,sound \
        --valid_data_path_and_name_and_type ... --train_shape_file ... \
        --normalize global_mvn --normalize_conf stats_file=.../feats_stats.npz \
        --output_dir exp/tts_train
"""

import functools
import os

import torch
from espnet2.bin.tts_train import main

import espnet_glowtts  # noqa: F401  (registers glow_tts)


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
