"""Switti (yandex-research/switti): text-to-image next-scale transformer conditioned on two CLIP text
encoders (CLIP-L and CLIP-bigG); `text`: the prompt encoding."""
