"""Tiny random-weight models, saved in the official checkpoint formats, with a YAML config.

For tests, demos and trying the CLI without downloading gigabytes: the files load through exactly the
code path of the released checkpoints. The makers live beside each family (`backends/<family>/tiny.py`);
this module is their command line. The images are noise, of course.

    python -m ssgen.tiny var out/      # writes out/transformer.pth, out/vae.pth, out/var-tiny.yaml
    python -m ssgen.tiny infinity out/ # (or hart): the same for the text-to-image families
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    from .backends.hart.tiny import make_tiny_hart
    from .backends.infinity.tiny import make_tiny_infinity
    from .backends.var.tiny import make_tiny_var

    makers = {"var": make_tiny_var, "infinity": make_tiny_infinity, "hart": make_tiny_hart}
    if len(argv) != 2 or argv[0] not in makers:
        sys.exit(f"usage: python -m ssgen.tiny {{{'|'.join(makers)}}} OUT_DIR")
    print(makers[argv[0]](argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
