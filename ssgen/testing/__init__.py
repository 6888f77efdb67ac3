"""Helpers for tests and rehearsals, not used by ssgen itself.

`ssgen.testing.hubserver` is a Hugging Face Hub-compatible HTTP server bound to 127.0.0.1: it serves repos from
memory, from disk or generated on request, so the download, verification and offline paths run against the real
`huggingface_hub` client without the network. It imports only the standard library.
"""
