"""SSG and DSE: the math (docs/ssg.md), its settings, and the goldens of the SSG spec."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import load_tensors, need_goldens

from ssgen.errors import ConfigError
from ssgen.guidance import SSG, dct_matrix, dse, prior, ssg, ssg_from_config

torch.manual_seed(0)


def spectrum(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return dct_matrix(h, dtype=x.dtype) @ x @ dct_matrix(w, dtype=x.dtype).T


@pytest.mark.parametrize("n", [1, 2, 5, 13, 32])
def test_dct_is_orthonormal(n):
    D = dct_matrix(n, dtype=torch.float64)
    assert torch.allclose(D @ D.T, torch.eye(n, dtype=torch.float64), atol=1e-12)
    assert dct_matrix(n) is dct_matrix(n)  # built once, cached


@pytest.mark.parametrize("interp", ["bilinear", "bicubic"])
def test_dse_identity_for_equal_sizes(interp):
    x = torch.randn(2, 7, 6, 8)
    assert torch.equal(dse(x, (6, 8), interp=interp), x)


@pytest.mark.parametrize("hw0, hw", [((1, 1), (2, 2)), ((13, 13), (16, 16)), ((3, 4), (6, 8)), ((6, 6), (6, 8))])
@pytest.mark.parametrize("rescale", [True, False])
def test_dse_low_band_is_scaled_coarse_spectrum(hw0, hw, rescale):
    x = torch.randn(2, 5, *hw0, dtype=torch.float64)
    y = dse(x, hw, rescale=rescale)
    s = math.sqrt(hw[0] * hw[1] / (hw0[0] * hw0[1])) if rescale else 1.0
    low = spectrum(y)[..., : hw0[0], : hw0[1]]
    assert torch.allclose(low, spectrum(x) * s, atol=1e-10)


def test_dse_preserves_the_mean_with_rescale():
    x = torch.randn(3, 4, 13, 13, dtype=torch.float64) + 3.0
    y = dse(x, (16, 16))
    assert torch.allclose(y.mean((-2, -1)), x.mean((-2, -1)), atol=1e-10)


def test_dse_is_linear_and_maps_constants_to_constants():
    a, b = torch.randn(1, 3, 5, 5), torch.randn(1, 3, 5, 5)
    assert torch.allclose(dse(2 * a - b, (8, 8)), 2 * dse(a, (8, 8)) - dse(b, (8, 8)), atol=1e-5)
    c = torch.full((1, 1, 5, 5), 2.5)
    assert torch.allclose(dse(c, (8, 8)), torch.full((1, 1, 8, 8), 2.5), atol=1e-5)


def test_beta_zero_changes_nothing():
    l, lp = torch.randn(2, 16, 11), torch.randn(2, 9, 11)
    assert torch.equal(ssg(l, lp, 0.0, (4, 4), (3, 3)), l)


def test_ssg_formula():
    l, lp = torch.randn(2, 16, 11), torch.randn(2, 9, 11)
    p = dse(lp.transpose(1, 2).reshape(2, 11, 3, 3), (4, 4)).reshape(2, 11, 16).transpose(1, 2)
    assert torch.allclose(ssg(l, lp, 0.7, (4, 4), (3, 3)), 1.7 * l - 0.7 * p, atol=1e-5)


@pytest.mark.parametrize("kind", ["dse", "bilinear", "bicubic", "nearest", "area"])
def test_per_position_constant_does_not_change_softmax(kind):
    """Adding c(position) to the logits (e.g. logits vs log-softmax) leaves softmax(SSG) unchanged."""
    l, lp = torch.randn(2, 36, 50, dtype=torch.float64), torch.randn(2, 16, 50, dtype=torch.float64)
    c, cp = torch.randn(2, 36, 1, dtype=torch.float64) * 5, torch.randn(2, 16, 1, dtype=torch.float64) * 5
    a = ssg(l, lp, 0.8, (6, 6), (4, 4), kind=kind).softmax(-1)
    b = ssg(l + c, lp + cp, 0.8, (6, 6), (4, 4), kind=kind).softmax(-1)
    assert torch.allclose(a, b, atol=1e-10)


def test_ablation_priors_are_plain_interpolation():
    x = torch.randn(1, 2, 3, 3)
    assert torch.allclose(prior(x, (6, 6), "nearest"), x.repeat_interleave(2, -1).repeat_interleave(2, -2))
    assert not torch.allclose(prior(x, (6, 6), "dse"), prior(x, (6, 6), "bilinear"))


def test_dse_goldens():
    d = need_goldens("ssg")
    cases = json.loads((d / "dse_cases.json").read_text())
    t = load_tensors(d / "dse_cases.safetensors")
    n = 0
    for case in cases:
        i, hw = case["case"], tuple(case["output_hw"])
        x = t[f"case{i}/input"]
        assert tuple(x.shape[-2:]) == tuple(case["input_hw"])
        for interp in ("bilinear", "bicubic"):
            for tag, rescale in (("rescale", True), ("plain", False)):
                ref = t[f"case{i}/{interp}/{tag}"]
                y = dse(x, hw, interp=interp, rescale=rescale)
                assert (y - ref).abs().max().item() <= 1e-5, (i, interp, tag)
                n += 1
    assert n == 4 * len(cases) >= 24


# ------------------------------------------------------------------------------ settings
def test_plan_ranges():
    assert SSG(beta=0.5, scales=(2, 9)).plan(10) == [0, 0] + [0.5] * 8
    assert SSG(beta=0.5, scales=(-3, -1)).plan(10) == [0] * 7 + [0.5] * 3
    assert SSG(beta=1.0, scales=(0, 2)).plan(4) == [0.0, 1.0, 1.0, 0.0]  # scale 0 is never guided
    assert SSG(beta=[0.1 * k for k in range(4)], scales=(1, 3)).plan(4) == pytest.approx([0, 0.1, 0.2, 0.3])
    ramp = SSG(beta="linear:1.0:0.2", scales=(2, 6)).plan(7)
    assert ramp == pytest.approx([0, 0, 1.0, 0.8, 0.6, 0.4, 0.2])


@pytest.mark.parametrize("kw, n, msg", [
    (dict(scales=(2, 12)), 10, "outside this model's scales 0-9"),
    (dict(scales=(5, 2)), 10, "start > end"),
    (dict(scales=(-11, 3)), 10, "outside"),
    (dict(beta=[0.5, 0.5]), 10, "2 values but this model has 10 scales"),
])
def test_plan_errors(kw, n, msg):
    with pytest.raises(ConfigError, match=msg):
        SSG(**kw).plan(n)


@pytest.mark.parametrize("kw, msg", [
    (dict(prior="gaussian"), "unknown SSG prior 'gaussian'; use one of: dse, bilinear"),
    (dict(interp="lanczos"), "unknown DSE interpolation 'lanczos'"),
    (dict(beta=float("nan")), "finite"),
    (dict(beta=[0.1, float("inf")]), "finite"),
    (dict(beta="linear:1"), "malformed"),
    (dict(scales=(1, 2, 3)), "pair"),
])
def test_ssg_setting_errors(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        SSG(**kw)


def test_string_forms():
    """The text forms (flags, YAML, job files) give the same settings as the values."""
    assert SSG(beta="0.5") == SSG(beta=0.5)
    assert SSG(beta=" 0,0,0.2, 0.4").beta == (0.0, 0.0, 0.2, 0.4)  # a tuple, like a list is stored
    assert SSG(beta="0,0,0.2,0.4", scales="1-3").plan(4) == [0.0, 0.0, 0.2, 0.4]
    assert SSG(beta="linear:1:0.2") == SSG(beta="linear:1.0:0.2")
    assert SSG(scales="2-9").scales == (2, 9) and SSG(scales="-4--1").scales == (-4, -1)
    assert SSG(scales="3").scales == (3, 3) and SSG(scales="2:9").scales == (2, 9)
    for bad in ("abc", "1,x", "inf", "linear:a:b", "linear:1", ""):
        with pytest.raises(ConfigError, match="malformed SSG beta|finite"):
            SSG(beta=bad)
    for bad in ("2_9", "a-b", ""):
        with pytest.raises(ConfigError, match="malformed SSG scale range"):
            SSG(scales=bad)


def test_ramp_keeps_exact_values():
    s = SSG(beta="linear:0.1234567:0.2", scales=(1, 3))
    assert s.plan(4)[1] == 0.1234567 and s.plan(4)[3] == 0.2


@pytest.mark.parametrize("s", [SSG(), SSG(beta="0,0,0.2,0.4"), SSG(beta=[1, 2, 3]), SSG(beta="linear:0.1234567:0.2"),
                               SSG(beta=0.25, scales=(1, -2), prior="area", interp="bicubic", rescale=False)])
def test_to_dict_round_trips(s):
    assert SSG(**s.to_dict()) == s
    assert ssg_from_config(json.loads(json.dumps(s.to_dict()))) == s  # as written into PNGs and read back


def test_config_section():
    assert ssg_from_config({"enabled": False, "beta": 0.3}) is None
    s = ssg_from_config({"beta": 0.3, "scales": [1, -2], "prior": "dse"})
    assert s == SSG(beta=0.3, scales=(1, -2))
    with pytest.raises(ConfigError, match="unknown field"):
        ssg_from_config({"betta": 1})
    assert ssg_from_config(None) is None and ssg_from_config(False) is None
    assert ssg_from_config({}) == SSG()  # an empty section: the defaults
    for bad in ([0.5], 0.5, "on", True):
        with pytest.raises(ConfigError, match="must be a mapping"):
            ssg_from_config(bad)


# ------------------------------------------------------------------------------ goldens: SSG in the loop
def ssg_run_ids():
    from conftest import goldens_dir

    p = goldens_dir() / "ssg" / "runs.json"
    if not p.exists():
        return ["goldens-missing"]
    return [r["name"] for r in json.loads(p.read_text())["runs"]["tiny256"]]


@pytest.mark.parametrize("name", ssg_run_ids())
def test_ssg_golden_run(name, var_golden_pipe):
    d = need_goldens("ssg")
    run = next(r for r in json.loads((d / "runs.json").read_text())["runs"]["tiny256"] if r["name"] == name)
    ref = load_tensors(d / "tiny256.safetensors")
    s = run["ssg"]
    res = var_golden_pipe.generate(
        classes=run["classes"], seed=run["seed"], cfg=run["cfg"], top_k=run["top_k"], top_p=run["top_p"],
        more_smooth=run["more_smooth"], rng="batch",
        ssg=SSG(beta=s["beta"], scales=tuple(s["scales"]), prior=s["prior"], interp=s["interp"],
                rescale=s["rescale"]),
    )
    for k in range(len(res.tokens)):
        assert torch.equal(res.tokens[k], ref[f"{name}/tokens/{k}"]), f"tokens differ at scale {k}"
    diff = (res.pixels - ref[f"{name}/image"]).abs().max().item()
    assert diff <= 1e-4, f"image differs by {diff}"
    plain = var_golden_pipe.generate(classes=run["classes"], seed=run["seed"], cfg=run["cfg"], top_k=run["top_k"],
                                     top_p=run["top_p"], rng="batch", ssg=False)
    assert not all(torch.equal(a, b) for a, b in zip(plain.tokens, res.tokens))  # SSG did something


@pytest.mark.parametrize("kind", ["dse", "bilinear", "bicubic", "nearest", "area"])
@pytest.mark.parametrize("hw0, hw", [((3, 3), (4, 4)), ((3, 4), (6, 8)), ((13, 13), (16, 16))])
def test_prior_operator_equals_prior(kind, hw0, hw):
    """The cached matrix form used in the loop is the same map as the definition."""
    from ssgen.guidance import prior_operator

    x = torch.randn(2, 7, *hw0, dtype=torch.float64)
    M = prior_operator(hw0, hw, kind, "bicubic", True, "cpu", torch.float64)
    tokens = x.reshape(2, 7, -1).transpose(1, 2)  # (B, h'*w', C)
    via_matrix = (M @ tokens).transpose(1, 2).reshape(2, 7, *hw)
    assert torch.allclose(via_matrix, prior(x, hw, kind, interp="bicubic"), atol=1e-10)
