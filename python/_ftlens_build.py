"""ftlens' build backend: setuptools', after checking that the torch to build against can
be imported.

The C++ core compiles against torch's headers and links its libraries, so it must be
built against the torch it will run with, as every compiled torch extension is
(torch_scatter, flash-attn, xformers). pip's default build isolation installs the build
requirements into an empty temporary environment where the installed torch is not
visible; listing torch there would build against another download of it (often a
multi-GB CUDA build). So torch is not a build requirement, and a wheel or editable build
without a visible torch stops at once with the command that works.
"""

from __future__ import annotations

import sys

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 - the rest of the PEP 517 hooks, unchanged

MESSAGE = """
ftlens compiles its C++ core against the torch it will run with, and this build cannot see
a torch: pip's build isolation hides the one installed in your environment.
Install torch and the build tools first, then build ftlens without isolation:

    pip install torch setuptools wheel cmake ninja
    pip install --no-build-isolation ftlens      (or a source folder: --no-build-isolation .)

and `python -m build --wheel --no-isolation` for a wheel. The wheel is then tied to that
torch release (it requires torch==<major>.<minor>.*).
"""


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.stderr.write(MESSAGE)
        raise SystemExit(1) from None


def get_requires_for_build_wheel(config_settings=None):
    _require_torch()
    return _setuptools.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_editable(config_settings=None):
    _require_torch()
    return _setuptools.get_requires_for_build_editable(config_settings)
