"""Helpers shared by the tests (imported as a package, not from conftest): float64
references, synthetic data, tiny models, a store writer run as a subprocess."""
