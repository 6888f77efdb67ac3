"""Reference outputs of the OFFICIAL Switti code (yandex-research/switti) for a tiny AR Switti (use_ar=True).

    SWITTI_SRC=/tmp/switti-src GIT_DIR=<its git dir> python make_refs.py OUT_DIR [--threads 2] [--model DIR]

Writes OUT_DIR/switti/ (SwittiHF.save_pretrained of a depth-2, reso-256, use_ar=True SwittiHF with seeded
random weights, stored float16: every value fp16-exact, the official loader casts to the run's float32;
with --model an existing folder is used instead), OUT_DIR/refs.safetensors and OUT_DIR/refs.json. The VAE and
the two CLIP folders are the goldens' (shared/goldens/switti/tiny/{vae,text_encoder,text_encoder_2}, or
$SWITTI_GOLDEN), read where they lie. Nothing of the official code is in this repository.
The official code runs unchanged; from outside only: CUDA hidden, torchvision stubbed (ToPILImage unused with
return_pil=False), imported with cwd = the checkout, the pipeline's three Hub ids pointed at local folders,
recording wrappers around module-level names.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import types
from pathlib import Path

os.environ["CUDA_VISIBLE_DEVICES"] = ""
SRC = Path(os.environ.get("SWITTI_SRC", "/tmp/switti-src")).resolve()
GOLD = Path(os.environ.get("SWITTI_GOLDEN", "/work/shared/goldens/switti/tiny")).resolve()
os.chdir(SRC)
sys.path.insert(0, str(SRC))

# before the stub: transformers probes torchvision's import spec
import diffusers  # noqa: E402
import diffusers.models.embeddings  # noqa: E402,F401
import huggingface_hub  # noqa: E402
import transformers  # noqa: E402

tv = types.ModuleType("torchvision")
tvt = types.ModuleType("torchvision.transforms")
tvt.ToPILImage = lambda: (_ for _ in ()).throw(RuntimeError("ToPILImage is not used with return_pil=False"))
tv.transforms = tvt
sys.modules["torchvision"], sys.modules["torchvision.transforms"] = tv, tvt

import models.pipeline as P  # noqa: E402
import torch  # noqa: E402
from models.switti import SwittiHF  # noqa: E402

SEED_WEIGHTS = 0
LOGITS_KEPT = (0, 1, 2, 3)
IMAGE_STRIDE = 2
RUNS = [
    dict(name="b2_cfg4_cut7",
         call=dict(prompt=["a photo of a cat sitting on a red sofa", "a dog"], seed=3, cfg=4.0, top_k=50,
                   top_p=0.9, more_smooth=False, turn_on_cfg_start_si=0, turn_off_cfg_start_si=7,
                   last_scale_temp=0.5, return_pil=False)),
    dict(name="b1_smooth_neg",
         call=dict(prompt=["the cat and the dog on the moon"], null_prompt="blurry", seed=11, cfg=6.0, top_k=400,
                   top_p=0.95, more_smooth=True, smooth_start_si=2, turn_on_cfg_start_si=0,
                   turn_off_cfg_start_si=8, last_scale_temp=0.1, return_pil=False)),
]


def draw_weights(model: torch.nn.Module, seed: int) -> None:
    """The goldens' recipe (goldens/switti/tiny model.json `weights`), so that every part matters: Linear
    weights N(0, 1/fan_in), biases N(0, .02^2), RMSNorm weights 1 + N(0, .2^2), pos_start / lvl_embed /
    crop_cond_scales N(0, .5^2); crop_embed.weight keeps its N(0, 1) init. Then rounded to float16."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "crop_embed.weight":
                pass
            elif name.endswith(("norm1.weight", "norm2.weight", "attention_y_norm.weight")):
                p.copy_(1 + torch.randn(p.shape, generator=g) * 0.2)
            elif name in ("pos_start", "lvl_embed.weight") or name.endswith("crop_cond_scales"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif p.ndim == 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
            p.copy_(p.half().float())


class Pipe(P.SwittiPipeline):
    vae_path = str(GOLD / "vae")
    text_encoder_path = str(GOLD / "text_encoder")
    text_encoder_2_path = str(GOLD / "text_encoder_2")


def record_run(pipe, run: dict) -> tuple[dict, dict]:
    """Call the pipeline with recording wrappers; returns (tensors, facts)."""
    name, call = run["name"], run["call"]
    t: dict[str, torch.Tensor] = {}
    sched: list[dict] = []
    state = {"si": 0}
    sw = pipe.switti
    orig_sample, orig_gumbel = P.sample_with_top_k_top_p_, P.gumbel_softmax_with_rng
    quant = pipe.vae.quantize
    orig_next, orig_img, orig_logits = quant.get_next_autoregressive_input, pipe.vae.fhat_to_img, sw.get_logits

    def get_logits(h, cond):
        si = state["si"]
        caches = [tuple(b.attn.cached_k.shape) for b in sw.blocks]
        sched.append(dict(si=si, rows=h.shape[0], cache_k_shapes=caches))
        return orig_logits(h, cond)

    def sample(logits, rng=None, top_k=0, top_p=0.0, num_samples=1):
        si = state["si"]
        if si in LOGITS_KEPT:
            t[f"{name}/logits/{si}"] = logits.clone()
        idx = orig_sample(logits, rng=rng, top_k=top_k, top_p=top_p, num_samples=num_samples)
        t[f"{name}/tokens/{si}"] = idx[:, :, 0].clone()
        sched[-1].update(sampler="multinomial", top_k=top_k, top_p=top_p)
        return idx

    def gumbel(logits, tau=1, hard=False, dim=-1, rng=None):
        si = state["si"]
        if si in LOGITS_KEPT:
            t[f"{name}/logits/{si}"] = logits.clone()  # the sampler's input times (1 + ratio)
        soft = orig_gumbel(logits, tau=tau, hard=hard, dim=dim, rng=rng)
        t[f"{name}/soft_argmax/{si}"] = soft.argmax(-1)
        sched[-1].update(sampler="gumbel_soft", tau=tau)
        return soft

    def next_input(si, SN, f_hat, h):
        out = orig_next(si, SN, f_hat, h)
        state["si"] = si + 1
        return out

    def fhat_to_img(f_hat):
        t[f"{name}/fhat"] = f_hat.clone()
        return orig_img(f_hat)

    P.sample_with_top_k_top_p_, P.gumbel_softmax_with_rng = sample, gumbel
    quant.get_next_autoregressive_input, pipe.vae.fhat_to_img, sw.get_logits = next_input, fhat_to_img, get_logits
    try:
        img = pipe(**call)
    finally:
        P.sample_with_top_k_top_p_, P.gumbel_softmax_with_rng = orig_sample, orig_gumbel
        del quant.get_next_autoregressive_input, pipe.vae.fhat_to_img, sw.get_logits
    t[f"{name}/image"] = img[..., ::IMAGE_STRIDE, ::IMAGE_STRIDE].clone()  # every 2nd pixel: a smaller file
    return t, dict(name=name, call=call, B=len(call["prompt"]), schedule=sched)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", help="an existing transformer folder to run (drift runs) instead of writing one")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(a.model).resolve() if a.model else out / "switti"
    mem = None
    if not a.model:
        torch.manual_seed(0)
        model = SwittiHF(depth=2, reso=256, use_ar=True)
        draw_weights(model, SEED_WEIGHTS)
        mem = {k: v.clone() for k, v in model.state_dict().items()}
        model.half().save_pretrained(folder)
    pipe = Pipe.from_pretrained(str(folder), torch_dtype=torch.float32, device="cpu", reso=256)
    facts = {"loaded_dtype": str(next(pipe.switti.parameters()).dtype)}
    if mem is not None:  # the folder reloads to exactly the model drawn in memory
        sd = pipe.switti.state_dict()
        assert set(sd) == set(mem), set(sd) ^ set(mem)
        assert all(torch.equal(sd[k].to(mem[k].dtype), mem[k]) for k in mem)
        facts["reload_equals_memory"] = True
    tensors, runs = {}, []
    for run in RUNS:
        t, info = record_run(pipe, run)
        t2, _ = record_run(pipe, run)  # rerun: the same bytes
        info["rerun_identical"] = all(torch.equal(t[k], t2[k]) for k in t)
        tensors.update(t)
        runs.append(info)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "refs.safetensors"))
    meta = dict(official_repo="yandex-research/switti", official_commit=os.environ.get("SWITTI_COMMIT", "?"),
                torch=torch.__version__, threads=a.threads, runs=runs, logits_kept=list(LOGITS_KEPT),
                image_stride=IMAGE_STRIDE, weights_seed=SEED_WEIGHTS, **facts)
    meta.update(transformers=transformers.__version__, diffusers=diffusers.__version__,
                huggingface_hub=huggingface_hub.__version__)
    (out / "refs.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps({r["name"]: r["rerun_identical"] for r in runs}), facts)


if __name__ == "__main__":
    main()
