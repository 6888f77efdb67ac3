"""Model backends: one sub-package per model family (var, infinity, hart)."""
