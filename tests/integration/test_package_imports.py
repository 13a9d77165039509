"""The package's import shape: no module imports the package root (the version and the
build come from their own modules, so nothing depends on __init__'s import order), and
``import ftlens`` with a similarity call stays light (no transformers, accelerate,
matplotlib or yaml)."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import ftlens

PACKAGE = Path(ftlens.__file__).parent


def _root_imports(path: Path, text: str | None = None) -> list[str]:
    """Names the module at ``path`` (its source: ``text``, else the file's) imports from the
    package root (``from .. import x`` resolving to ``ftlens`` where x is not a submodule,
    or ``import ftlens``)."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    found = []
    source = path.read_text(encoding="utf-8") if text is None else text
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join(base + tuple(filter(None, (node.module or "").split("."))))
            if target == "ftlens":
                found += [a.name for a in node.names if importlib.util.find_spec(f"ftlens.{a.name}") is None]
        elif isinstance(node, ast.ImportFrom) and node.module == "ftlens":
            found += [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == "ftlens"]
    return found


def test_no_module_imports_the_package_root():
    offenders = {str(p.relative_to(PACKAGE)): names for p in PACKAGE.rglob("*.py")
                 if p.name != "__init__.py" or p.parent != PACKAGE
                 for names in [_root_imports(p)] if names}
    assert offenders == {}


def test_the_root_import_finder_sees_one():
    module = PACKAGE / "study" / "cache.py"
    found = _root_imports(module, "from .. import __version__, finetuning\nimport ftlens\n")
    assert found == ["__version__", "ftlens"]
    assert _root_imports(module, "from .._version import __version__\nfrom .. import _util\n") == []


def test_a_similarity_call_imports_no_heavy_dependency():
    heavy = ("transformers", "accelerate", "matplotlib", "yaml")
    code = ("import sys, numpy as np, ftlens\n"
            "ftlens.cka(np.random.rand(20, 3), np.random.rand(20, 3))\n"
            f"print(sorted(m for m in {heavy} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_are_unique_and_shadow_no_builtin():
    """No two public classes or module-level functions of the package share a name, and none
    is named after a builtin (``store.open`` was)."""
    import builtins
    import collections

    where = collections.defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                where[node.name].append(str(path.relative_to(PACKAGE)))
    assert {name: files for name, files in where.items() if len(files) > 1} == {}
    assert sorted(name for name in where if hasattr(builtins, name)) == []


def test_the_layer_contract_refuses_an_upward_import(tmp_path):
    """`make lint` runs import-linter over pyproject.toml's contracts: a copy of the package
    whose similarity registry imports the study (an upward import) breaks them."""
    import shutil

    copy = tmp_path / "ftlens"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    config = PACKAGE.parents[1] / "pyproject.toml"
    lint = Path(sys.executable).parent / "lint-imports"

    def check() -> subprocess.CompletedProcess:
        env = {"PYTHONPATH": str(tmp_path), "PATH": str(Path(sys.executable).parent)}
        return subprocess.run([str(lint), "--config", str(config), "--no-cache"], capture_output=True,
                              text=True, env=env, cwd=tmp_path)

    kept = check()
    assert kept.returncode == 0, kept.stdout[-2000:]
    registry = copy / "similarity" / "registry.py"
    registry.write_text(registry.read_text() + "\nfrom ..study import runner  # noqa\n")
    broken = check()
    assert broken.returncode != 0
    assert "ftlens.similarity.registry -> ftlens.study.runner" in broken.stdout
