"""Helpers every room uses: input validation, atomic files and folder locks, JSON results,
fingerprints, run folders and the distributed ranks. Imports nothing of ftlens above it."""
