"""ESPnet's ``espnet2.bin.tts_train`` with ``glow_tts`` registered.

Use it wherever a recipe runs ``python -m espnet2.bin.tts_train`` (also as the command
behind ``espnet2.bin.launch``). Worker processes started with "spawn" re-import this module
as their ``__main__``, so they see the registration too.
"""

import espnet_glowtts  # noqa: F401  (registers glow_tts)
from espnet2.bin.tts_train import main

if __name__ == "__main__":
    main()
