"""A test-only ssgen model family (see ../README.md)."""
