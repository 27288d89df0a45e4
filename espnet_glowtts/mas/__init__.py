# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""Monotonic Alignment Search (MAS) for Glow-TTS.

Public API:

* :func:`maximum_path` - the most likely monotonic alignment of frames to tokens
  (:mod:`espnet_glowtts.mas.search` routes it to the compiled core, Triton or torch).
* :func:`log_likelihood` - the value matrix MAS maximises over.
* :func:`backend` - which implementation runs on CPU tensors.
"""

from espnet_glowtts.mas.likelihood import log_likelihood
from espnet_glowtts.mas.search import backend, maximum_path

__all__ = ["maximum_path", "log_likelihood", "backend"]
