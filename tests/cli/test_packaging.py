"""The wheel carries the released model configs: an installed (not editable) ssgen lists its models."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_configs(tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = wheels.glob("ssgen-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, cwd=tmp_path)
    shipped = sorted(p.name for p in (site / "ssgen" / "configs").glob("*.yaml"))
    assert shipped == sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
    env = dict(os.environ, PYTHONPATH=str(site))  # the installed copy wins over the checkout's editable install
    code = "import ssgen, ssgen.config as c; print(ssgen.__file__); print(c.config_dir())"
    where = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                           check=True).stdout.split()
    assert all(w.startswith(str(site)) for w in where), where
    listed = subprocess.run([sys.executable, "-m", "ssgen", "models", "list", "--json"], env=env, cwd=tmp_path,
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert {r["name"] for r in json.loads(listed.stdout)} == {p.stem for p in (ROOT / "configs").glob("*.yaml")}


def test_checkout_reads_top_level_configs():
    from ssgen.config import config_dir, registry

    assert config_dir() == ROOT / "configs"
    assert registry()["var-d16"] == ROOT / "configs" / "var-d16.yaml"
