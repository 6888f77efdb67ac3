"""`dtype="auto"`: what it picks on each kind of CPU, and that it says why."""

import torch

import ssgen.pipeline as pipeline


def test_auto_on_a_cpu_without_amx_is_float32(monkeypatch):
    monkeypatch.setattr(pipeline, "cpu_has_amx", lambda: False)
    dt, why = pipeline.auto_dtype(torch.device("cpu"))
    assert dt == torch.float32 and "no AMX" in why
    assert pipeline.resolve_dtype("auto", torch.device("cpu")) == torch.float32


def test_auto_on_an_amx_cpu_is_bfloat16(monkeypatch):
    monkeypatch.setattr(pipeline, "cpu_has_amx", lambda: True)
    dt, why = pipeline.auto_dtype(torch.device("cpu"))
    assert dt == torch.bfloat16 and "AMX" in why
    assert pipeline.resolve_dtype("auto", torch.device("cpu")) == torch.bfloat16
    assert pipeline.describe_placement("cpu", "auto") == "cpu, " + why


def test_explicit_dtype_is_kept_whatever_the_cpu(monkeypatch):
    monkeypatch.setattr(pipeline, "cpu_has_amx", lambda: True)
    assert pipeline.resolve_dtype("float32", torch.device("cpu")) == torch.float32
    assert pipeline.describe_placement("cpu", "fp32") == "cpu, float32"


def test_this_machine_answers():
    # the real probe: whatever this CPU is, it answers a bool and auto follows it
    amx = pipeline.cpu_has_amx()
    assert isinstance(amx, bool)
    assert pipeline.resolve_dtype("auto", torch.device("cpu")) == (torch.bfloat16 if amx else torch.float32)


def test_bf16_cpu_attention_paths_agree(monkeypatch):
    """bf16 attention on the CPU: two matmuls around a softmax on AMX CPUs, SDPA elsewhere (each the faster
    there); both compute the same attention within bf16 rounding."""
    import ssgen.backends.var.model as var_model

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, n, 64, generator=g).to(torch.bfloat16) for n in (16, 40, 40))
    ref = torch.softmax(q.float() @ k.float().transpose(-2, -1) * 0.125, -1) @ v.float()
    outs = {}
    for amx in (True, False):
        monkeypatch.setattr(var_model, "cpu_has_amx", lambda amx=amx: amx)
        outs[amx] = var_model.attention(q, k, v, 0.125).float()
        assert (outs[amx] - ref).abs().max() < 0.05
    assert not torch.equal(outs[True], outs[False])  # two different kernels really ran


def cpu_with(monkeypatch, *flags: str) -> None:
    """Pretend this CPU lists `flags` (and has AMX only if it lists amx_bf16)."""
    import ssgen.hardware as hardware

    monkeypatch.setattr(hardware, "cpu_info", lambda: hardware.CpuInfo("test CPU", frozenset(flags)))
    monkeypatch.setattr(hardware, "cpu_has_amx", lambda: "amx_bf16" in flags)


def test_an_emulated_dtype_on_the_cpu_gets_a_note(tiny_var, tmp_path, monkeypatch):
    """--dtype float16 on a CPU without AVX512-FP16/AMX-FP16 (and bfloat16 without AVX512-BF16/AMX) runs emulated,
    several times slower than float32: the run says so, once, on stderr; a CPU that has them, float32 and auto
    get no note."""
    from helpers import ssgen_here

    cpu_with(monkeypatch, "avx2", "f16c")
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "--dtype", "float16", "--device", "cpu",
                   "-o", str(tmp_path / "a.png"))
    assert r.exit_code == 0, r.output
    notes = [line for line in r.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "float16" in notes[0] and "several times slower than float32" in notes[0], r.stderr
    assert "--dtype float32" in notes[0]
    assert "bfloat16" in pipeline.slow_dtype_note("cpu", "bf16")
    for dtype in ("float32", "auto"):
        assert pipeline.slow_dtype_note("cpu", dtype) is None
    cpu_with(monkeypatch, "avx512_fp16", "avx512_bf16")
    assert pipeline.slow_dtype_note("cpu", "float16") is None and pipeline.slow_dtype_note("cpu", "bf16") is None
    cpu_with(monkeypatch, "amx_fp16", "amx_bf16")
    assert pipeline.slow_dtype_note("cpu", "fp16") is None and pipeline.slow_dtype_note("cpu", "bfloat16") is None
