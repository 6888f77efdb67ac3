"""Infinity (FoundationVision/Infinity): text-to-image bitwise next-scale transformer, its BSQ VAE and
the flan-t5-xl text encoder.

`model.Infinity` and `vae.BSQVAE` are clean re-implementations whose parameter names match the
official checkpoints (`infinity_2b_reg.pth`, the 8B safetensors shards, `infinity_vae_d32reg.pth`),
so `load_state_dict` reads the released files once the keys in `model.IGNORED_KEYS_INFINITY` and
`vae.IGNORED_KEYS_VAE` are dropped. `family` drives them through ssgen's generic next-scale loop;
`text` wraps the T5 encoder; `tiny` writes a tiny random-weight model in the official formats.
"""
