"""The ``serving`` backend: one variant, ``serve``, a decoder serving N LoRA adapters at once.

``serve:impl=I,adapters=N,mix=M,r=R,n=K`` runs a prefill or decode step of a batch of B requests, each with
one of N LoRA adapters (rank R, on layers K..L-1) drawn under the popularity mix M, by implementation I:
``peft`` (one peft model, ``adapter_names`` per row), ``native`` (the batched gather-and-multiply reference
by forward hooks) or ``merged`` (one merged model per adapter, run one after another); see
:mod:`adapterdrop.serving` and docs/serving.md. Its group's baseline is ``full``: the base model with no
adapter. The variant is built by the decoder family (:mod:`adapterdrop.families.decoder_variants`); on an
encoder, or for training, it is refused with one line.
"""

from __future__ import annotations

from typing import Any

from adapterdrop.backends.base import AdapterPattern, Backend
from adapterdrop.errors import VariantError
from adapterdrop.variants.spec import Option, VariantInfo, VariantSpec

#: implementations of a batch whose rows use different adapters (docs/serving.md)
IMPLEMENTATIONS = ("native", "peft", "merged")
#: how each request's adapter is drawn
MIXES = ("uniform", "same", "distinct", "zipf")


def _decoders_only(spec: VariantSpec, *_: Any) -> Any:
    raise VariantError(f"'{spec.canonical}' serves a decoder LLM (prefill, decode); this model is an encoder")


SERVE = VariantInfo(
    "serve",
    "N LoRA adapters served at once on a decoder (prefill, decode): peft's mixed batch, the native batched "
    "reference, or one merged model per adapter",
    (
        Option("impl", str, "native", "implementation", choices=IMPLEMENTATIONS),
        Option("adapters", int, 8, "N, the adapters served", minimum=1),
        Option(
            "mix", str, "uniform", "how each request's adapter is drawn (distinct: N = batch)", choices=MIXES
        ),
        Option("r", int, 8, "LoRA rank of every adapter", minimum=1),
        Option("n", int, 0, "LoRA on layers n..L-1 only", minimum=0),
    ),
    _decoders_only,
    inference_only=True,
)

BACKEND = Backend(
    name="serving",
    summary="many LoRA adapters served at once on a decoder (adapterdrop.serving)",
    variants=(SERVE,),
    shares_base=True,
    adapter_modules=(AdapterPattern(r"\.lora_[AB]\.[^.]+$"),),
    adapter_parameters=(AdapterPattern(r"\.lora_[AB]\."),),
    profile_rows=r"^(model\.embed_tokens|model\.layers\.\d+|lm_head)(\.|$)",
)
