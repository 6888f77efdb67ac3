"""The package version, in one place (ground layer: every module may import it)."""

__version__ = "0.1.0"
