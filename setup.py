"""Build hook: ship the top-level `configs/` (the source of truth in a checkout) inside the wheel as
`ssgen/configs/`, so an installed ssgen finds the released model configs. Everything else is in
pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithConfigs(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads configs/ in the checkout
            return
        dest = Path(self.build_lib) / "ssgen" / "configs"
        dest.mkdir(parents=True, exist_ok=True)
        for f in sorted(Path(__file__).parent.joinpath("configs").glob("*.yaml")):
            shutil.copy2(f, dest / f.name)


setup(cmdclass={"build_py": BuildPyWithConfigs})
