"""ihc: see README.md (work in progress)."""
