"""inference: see README.md (work in progress)."""
