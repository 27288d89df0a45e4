#!/usr/bin/env bash
# Peak memory (max RSS, /usr/bin/time -v) and wall time of long texts, torch
# (Text2Speech with sentence splitting) and the ONNX runtime, issue 11.
#   bench/long_text_memory.sh EXP_DIR ONNX_DIR [CHARS...]
# EXP_DIR: config.yaml + model.pth; ONNX_DIR: its export. Texts: the built-in sentences,
# repeated and lowercased, cut to CHARS characters (default 5000 10000).
# PYTHON runs the torch path (default: python); RUNTIME_PYTHON the runtime (default: PYTHON),
# e.g. a venv with only requirements-runtime.txt: importing torch+espnet alone takes ~1.2 GB.
# PATHS: which of "torch onnx" to run (default both).
set -euo pipefail
exp=$1; onnx=$2; shift 2
sizes=("${@:-5000}"); [ $# -gt 0 ] || sizes=(5000 10000)
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
py=${PYTHON:-python}
rpy=${RUNTIME_PYTHON:-$py}
for n in "${sizes[@]}"; do
    "$py" - "$n" > "$tmp/text_$n.txt" <<'PY'
import sys
from pathlib import Path
lines = [l for l in Path("egs2/TEMPLATE/tts_glow/glowtts_recipe/data/sentences.txt")
         .read_text().splitlines() if l.strip() and not l.startswith("#")]
text, i = "", 0
while len(text) < int(sys.argv[1]):
    text += lines[i % len(lines)].lower() + " "
    i += 1
print(text[: int(sys.argv[1])])
PY
    for path in ${PATHS:-torch onnx}; do
        if [ $path = torch ]; then
            cmd=("$py" -c "import sys, soundfile as sf, espnet_glowtts
from espnet2.bin.tts_inference import Text2Speech
t = Text2Speech(train_config=sys.argv[1] + '/config.yaml', model_file=sys.argv[1] + '/model.pth')
wav = t(open(sys.argv[2]).read())['wav'].numpy(); sf.write(sys.argv[3], wav, t.fs)" \
                "$exp" "$tmp/text_$n.txt" "$tmp/torch_$n.wav")
        else
            cmd=(env PYTHONPATH="$here" "$rpy" -m espnet_glowtts.runtime --model_dir "$onnx" --text_file \
                "$tmp/text_$n.txt" --out "$tmp/onnx_$n.wav" --stream)
        fi
        (cd "$here" && /usr/bin/time -v "${cmd[@]}") > "$tmp/log" 2>&1 || { tail -20 "$tmp/log"; exit 1; }
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/log")
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tmp/log")
        secs=$("$py" -c "import soundfile as sf, sys; print(round(sf.info(sys.argv[1]).duration, 1))" "$tmp/${path}_$n.wav")
        echo "| $path | $n | $((rss / 1024)) MB | $wall | $secs s |"
    done
done
rm -rf "$tmp"
