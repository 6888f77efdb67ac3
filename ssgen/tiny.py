"""Tiny random-weight models, saved in the official checkpoint formats, with a YAML config.

For tests, demos and trying the CLI without downloading gigabytes: the files load through exactly the
code path of the released checkpoints. The makers live beside each family (`backends/<family>/tiny.py`,
named by its spec); this module is their command line. The images are noise, of course.

    python -m ssgen.tiny var out/      # writes out/transformer.pth, out/vae.pth, out/var-tiny.yaml
    python -m ssgen.tiny infinity out/ # (or any registered family): the same for that family
    python -m ssgen.tiny inception out/weights-tiny.pth  # random weights in the format of FID's Inception file
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    from .backends import families

    specs = families()
    if len(argv) == 2 and argv[0] == "inception":  # not a family: one file, for `ssgen eval --inception`
        from .inception import make_tiny_inception

        print(make_tiny_inception(argv[1]))
        return
    if len(argv) != 2 or argv[0] not in specs:
        sys.exit(f"usage: python -m ssgen.tiny {{{'|'.join(specs)}}} OUT_DIR, or python -m ssgen.tiny inception FILE")
    print(specs[argv[0]].make_tiny()(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
