# Sourced by the recipe scripts: make `python` the interpreter that has espnet_glowtts.
# An active environment that has it wins; otherwise the project's .venv (made by
# `make install` at the top of the repository) is put first on PATH.
MAIN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
_has_glowtts() {
    command -v python >/dev/null 2>&1 && python -c \
        "import importlib.util as u, sys; sys.exit(u.find_spec('espnet_glowtts') is None)" \
        2>/dev/null
}
if ! _has_glowtts && [ -x "${MAIN_ROOT}/.venv/bin/python" ]; then
    export PATH="${MAIN_ROOT}/.venv/bin:${PATH}"
fi
if ! _has_glowtts; then
    echo "ERROR: no python with espnet_glowtts; run 'make install' in ${MAIN_ROOT}" >&2
    exit 1
fi
export PYTHONIOENCODING=UTF-8
export PYTHONUNBUFFERED=1
