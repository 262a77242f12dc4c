"""training: see README.md (work in progress)."""
