"""Optional prompt safety check with ShieldGemma-2B (google/shieldgemma-2b, a gated repository).

Upstream's demo scripts always run it and swap a flagged prompt for a default one; in ssgen it is off
by default (option `safety_check=True` turns it on) and a flagged prompt is an error rather than a
silent substitution. As upstream: a fixed policy-expert prompt around the user prompt, then
P("Yes") = softmax over the last position's {"Yes", "No"} logits; above 0.5 the prompt is flagged.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...checkpoint import check_model_folder
from ...errors import ConfigError, WeightsError, first_line

REPO = "google/shieldgemma-2b"
THRESHOLD = 0.5

POLICY = ("The prompt must not seek to generate harmful, abusive, hateful, sexually explicit, or otherwise "
          "inappropriate content targeting individuals or protected groups.")

ACCESS_HINT = (f"the prompt safety check uses {REPO}, a gated model: accept its licence at "
               f"https://huggingface.co/{REPO} and set HF_TOKEN (or run `hf auth login`), "
               "or leave safety_check off")


def policy_prompt(user_prompt: str) -> str:
    """The classification prompt ShieldGemma sees (upstream's wording and layout)."""
    return f"""You are a policy expert trying to help determine whether a user
    prompt is in violation of the defined safety policies.

    <start_of_turn>
    Human Question: {user_prompt.strip()}
    <end_of_turn>

    Our safety principle is defined in the below:

    {POLICY}

    Does the human question violate the above principle? Your answer must start
    with 'Yes' or 'No'. And then walk through step by step to be sure we answer
    correctly.
    """


class SafetyChecker:
    def __init__(self, tokenizer, model):
        self.tokenizer, self.model = tokenizer, model
        vocab = tokenizer.get_vocab()
        if "Yes" not in vocab or "No" not in vocab:
            raise WeightsError("the safety model's tokenizer has no 'Yes'/'No' tokens; is it ShieldGemma?")
        self.yes_no = [vocab["Yes"], vocab["No"]]

    @classmethod
    def load(cls, folder: str | Path, device: torch.device) -> "SafetyChecker":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ...quiet import quiet_transformers

        dtype = torch.float16 if device.type == "mps" else torch.bfloat16  # upstream runs it in bf16
        try:
            with quiet_transformers():
                tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
        except Exception as e:
            check_model_folder(folder)  # a truncated or corrupted file is named as such
            if not isinstance(e, (OSError, ValueError, KeyError)):
                raise
            raise WeightsError(f"cannot load the safety model from {folder} ({first_line(e)}); {ACCESS_HINT}") from None
        return cls(tok, model.to(device).eval())

    @torch.no_grad()
    def score(self, prompt: str) -> float:
        """P(the prompt violates the policy) in [0, 1]."""
        dev = next(self.model.parameters()).device
        inputs = self.tokenizer(policy_prompt(prompt), return_tensors="pt").to(dev)
        logits = self.model(**inputs).logits[0, -1, self.yes_no].float()  # (2,)
        return logits.softmax(dim=0)[0].item()

    def check(self, prompts: list[str]) -> None:
        """Raise ConfigError naming the first flagged prompt."""
        for i, p in enumerate(prompts):
            s = self.score(p)
            if s > THRESHOLD:
                raise ConfigError(f"prompt {i} was flagged by the safety check (ShieldGemma P(unsafe)={s:.2f}); "
                                  "rephrase it or turn safety_check off")


SAFETY_ALLOW = ["config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer.json",
                "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json"]


def load_checker(config, device: torch.device, offline: bool | None) -> SafetyChecker:
    """Load ShieldGemma from the config's `weights.safety` entry, else from the Hub repo google/shieldgemma-2b
    (kept out of the packaged config so that `ssgen models download` does not need the gated licence).
    Access problems explain the licence and HF_TOKEN."""
    from ...weights import resolve_folder, resolve_weight

    try:
        if "safety" in config.weights:
            folder = resolve_weight(config, "safety", offline=offline)
        else:
            folder = resolve_folder(REPO, None, allow_patterns=SAFETY_ALLOW, offline=offline)
    except WeightsError as e:
        raise WeightsError(f"{ACCESS_HINT} ({e})") from None
    return SafetyChecker.load(folder, device)
