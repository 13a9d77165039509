"""pip users: the wheel installs into a fresh venv that already holds the same torch and
works there; a plain `pip install .`, whose build cannot see that torch, stops at once
with the command that works; a core built against another torch release refuses to
load, naming both versions."""

import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from ftlens._core import check_torch

ROOT = Path(__file__).resolve().parents[2]
RELEASE = torch.__version__.split("+")[0]  # e.g. 2.13.0
SMOKE = """
import ftlens, torch
info = ftlens.build_info()
assert info["torch"] == torch.__version__.split("+")[0], info
x = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
value = float(ftlens.cka(x, x @ torch.randn(16, 16)))
assert 0.0 < value <= 1.0 + 1e-6, value
print("smoke ok", info["torch"], round(value, 4))
"""


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Iterator[Path]:
    """A new venv holding only the torch release this one has (from the pip cache; not
    byte-compiled, which halves the install time)."""
    folder = tmp_path_factory.mktemp("venv")
    assert _run(sys.executable, "-m", "venv", folder).returncode == 0
    python = folder / "bin" / "python"
    out = _run(python, "-m", "pip", "install", "-q", "--no-compile", f"torch=={RELEASE}")
    assert out.returncode == 0, out.stderr[-2000:]
    yield python
    shutil.rmtree(folder)  # 1.3 GB: gone when the module is done, not when the suite is


def _build(kind: str, out_dir: Path) -> Path:
    """``python -m build --wheel`` or ``--sdist`` (without isolation) of this checkout."""
    out = _run(sys.executable, "-m", "build", f"--{kind}", "--no-isolation", "--outdir", out_dir, ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (found,) = out_dir.glob("ftlens-*.whl" if kind == "wheel" else "ftlens-*.tar.gz")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _build("wheel", tmp_path_factory.mktemp("dist"))


def test_wheel_pins_the_torch_it_was_built_against(wheel):
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
        requires = [line for line in lines if line.startswith("Requires-Dist")]
        names = archive.namelist()
    major, minor = RELEASE.split(".")[:2]
    assert f"Requires-Dist: torch=={major}.{minor}.*" in requires
    assert not any("scikit-learn" in r for r in requires if "extra ==" not in r)  # tests only
    assert any(r.lower().startswith("requires-dist: pyyaml") for r in requires)  # study files
    assert any(n.startswith("ftlens/_C.") for n in names) and "ftlens/_torch_build.py" in names


def test_wheel_installs_into_a_fresh_venv_and_works(fresh_venv, wheel, tmp_path):
    out = _run(fresh_venv, "-m", "pip", "install", "-q", "--no-compile", wheel)
    assert out.returncode == 0, out.stderr[-3000:]
    smoke = _run(fresh_venv, "-c", SMOKE, cwd=tmp_path)  # not the source tree: the installed package
    assert smoke.returncode == 0 and "smoke ok" in smoke.stdout, smoke.stderr[-3000:]

    # the same installed package, its recorded torch faked to another release
    site = _run(fresh_venv, "-c", "import ftlens._torch_build as r; print(r.__file__)", cwd=tmp_path)
    record = Path(site.stdout.strip())
    original = record.read_text()
    try:
        record.write_text('TORCH = "2.1.0"\n')
        broken = _run(fresh_venv, "-c", "import ftlens", cwd=tmp_path)
    finally:
        record.write_text(original)
    assert broken.returncode != 0
    assert f"built against torch 2.1.0, but torch {RELEASE}" in broken.stderr
    assert "--no-build-isolation" in broken.stderr


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    return _build("sdist", tmp_path_factory.mktemp("sdist"))


@pytest.mark.parametrize("source", ["folder", "sdist"])
def test_plain_pip_install_stops_at_once_with_the_command_that_works(fresh_venv, sdist, source):
    """Build isolation hides the installed torch: the build stops before compiling."""
    start = time.perf_counter()
    out = _run(fresh_venv, "-m", "pip", "install", ROOT if source == "folder" else sdist)
    seconds = time.perf_counter() - start
    assert out.returncode != 0
    assert "pip install --no-build-isolation" in out.stdout + out.stderr
    assert seconds < 90, f"took {seconds:.0f} s"


def test_mismatched_torch_release_is_refused_by_name():
    with pytest.raises(ImportError, match=r"built against torch 2\.12\.1, but torch 2\.13\.0\+cpu is"):
        check_torch("2.12.1", "2.13.0+cpu")
    check_torch("2.13.0", "2.13.1+cu121")  # patch releases share the binary interface
