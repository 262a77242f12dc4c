"""mitoses: see README.md (work in progress)."""
