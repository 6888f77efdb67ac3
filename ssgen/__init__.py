"""ssgen: multi-scale visual autoregressive image generation (VAR, Infinity, HART) with
Scaled Spatial Guidance (SSG) and Discrete Spatial Enhancement (DSE).

    import ssgen
    pipe = ssgen.load("var-d30")
    res = pipe.generate(classes=[207], seed=0, ssg=ssgen.SSG(beta=0.5, scales=(2, 9)))
    res.images[0].save("dog.png")
"""

from .errors import SSGenError
from .version import __version__

__all__ = ["load", "Pipeline", "SSG", "Box", "GenerationResult", "SSGenError", "__version__"]


def __getattr__(name: str):
    """The torch-backed API is imported on first use, so `import ssgen` (and `ssgen --help`, listing and
    input errors) stay instant."""
    if name == "SSG":
        from .settings import SSG

        return SSG
    if name == "Box":
        from .edit import Box

        return Box
    if name in ("load", "Pipeline", "GenerationResult"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'ssgen' has no attribute {name!r}")
