"""Serving many LoRA adapters at once on a decoder LM (issue 17, item 4).

Modules, each with one job:

- :mod:`.mixes`: which adapter each request of a batch uses (popularity mixes, seeded).
- :mod:`.lora`: N LoRA adapters on one ``peft`` model, and their weights stacked per target module.
- :mod:`.batched`: the native batched LoRA (gather each row's A and B, one batched product) as forward hooks.
- :mod:`.copies`: copies of a model that share its weight tensors (one set of base weights for all).
- :mod:`.merged`: one merged model per adapter (``peft``'s ``merge_and_unload`` on a copy).
- :mod:`.fork`: the paper's parallel inference on a decoder (layers without adapters run once, then fork).
- :mod:`.bottleneck`: the parallel fork with N tasks' native bottleneck adapters (after each layer's MLP).
- :mod:`.variant`: ``serve`` as a harness variant (prefill, decode) in a decoder's groups.
- :mod:`.workloads`: prefill and decode calls with ``transformers``' cache classes.
- :mod:`.steps`: a zero-argument step per (implementation, workload, mix, N) and the tokens it produces.
"""
