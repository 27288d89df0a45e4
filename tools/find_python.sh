#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain on stderr why none was found.
# Order: $PYTHON, python3.12 / python3.13 when they actually run, then pyenv's 3.12+ versions
# (pyenv's shim for python3.12 fails when pyenv's global version is older).
set -u
works() { "$@" -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; }

if [ -n "${PYTHON:-}" ]; then
  if works "$PYTHON"; then command -v "$PYTHON" || echo "$PYTHON"; exit 0; fi
  echo "find_python: PYTHON=$PYTHON does not run as Python >= 3.12" >&2; exit 1
fi
for candidate in python3.12 python3.13 python3; do
  if works "$candidate"; then
    "$candidate" -c 'import sys; print(sys.executable)'; exit 0
  fi
done
pyenv_root=$( (pyenv root 2>/dev/null) || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for exe in "$pyenv_root"/versions/3.12*/bin/python3.12 "$pyenv_root"/versions/3.13*/bin/python3.13; do
  if [ -x "$exe" ] && works "$exe"; then echo "$exe"; exit 0; fi
done
cat >&2 <<MSG
find_python: no Python >= 3.12 found (espnet 202609+ needs it).
  Tried: python3.12, python3.13, python3 and pyenv versions under $pyenv_root/versions.
  Install one (e.g. 'pyenv install 3.12') or pass it: make test PYTHON=/path/to/python3.12
MSG
exit 1
