"""Switti (yandex-research/switti): a scale-wise text-to-image transformer on VAR's VQVAE, in plain PyTorch.

- `model.Switti`: the transformer (non-AR: each scale attends to itself; AR: block-causal with a KV cache);
  parameter names equal the released `model.safetensors` keys once `model.IGNORED_KEYS_SWITTI` are dropped.
- The VAE is VAR's VQVAE (`var/vae.py`, `var/encoder.py` for editing) on the transformer's scale schedule.
- `text`: the two CLIP text encoders; `options`: the call options and upstream's sampling schedule;
  `family`: loading and the backend the generic loop drives; `tiny`: a tiny random-weight Switti in the
  released folder layouts, for tests and demos.
"""
