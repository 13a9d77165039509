"""``python -m ftlens ...`` (e.g. under ``torchrun -m ftlens run study.yaml``)."""

from .cli import main

raise SystemExit(main())
