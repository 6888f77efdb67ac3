"""VAR (FoundationVision/VAR): class-conditional next-scale transformer and its multi-scale VQVAE.

`model.VAR` and `vae.VQVAE` are clean re-implementations whose parameter names match the official
checkpoints (`var_d{16,20,24,30,36}.pth`, `vae_ch160v4096z32.pth`), so `load_state_dict` reads the
released files once the training-only keys (`model.IGNORED_KEYS_VAR`, `vae.IGNORED_KEYS_VAE`) are
dropped.
"""
