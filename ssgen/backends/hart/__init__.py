"""HART (mit-han-lab/hart): text-to-image next-scale transformer with a hybrid tokenizer and a residual
diffusion head, in plain PyTorch (no CUDA extension; CPU, CUDA and MPS).

- `model.HART`: the transformer (+ `diffloss`, the residual MLP); parameter names equal the official
  `llm/ema_model.bin` keys once `model.IGNORED_KEYS_HART` are dropped.
- `tokenizer.HybridTokenizer`: VAR's VQVAE decoder side with HART's hybrid last scale.
- `diffusion`: the MLP and its 8-step iDDPM sampler; `text`: Qwen2 prompt encoding; `safety`: the
  optional ShieldGemma prompt check; `family`: loading and the backend the generic loop drives;
  `tiny`: a tiny random-weight HART in the official layout, for tests and demos.
"""
