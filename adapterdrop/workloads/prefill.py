"""The decoder family's ``prefill``: a forward over B prompts of P tokens that fills a fresh KV cache and
gives each prompt's next-token logits (time to first token).

The step is :func:`adapterdrop.serving.workloads.prefill_call` on the variant's causal LM (the same call
the multi-adapter serving measures): a new ``transformers`` ``DynamicCache`` per step, as ``generate``
makes one per request, and logits for the last position only (``logits_to_keep=1``). It produces B
sequences' first tokens from B x P prompt tokens; throughput counts the prompt tokens.
"""

from __future__ import annotations

from adapterdrop.measure import step as steps
from adapterdrop.measure.types import GroupContext, PreparedStep
from adapterdrop.scenario import Scenario
from adapterdrop.serving.variant import ServingVariant
from adapterdrop.serving.workloads import Served, prefill_call
from adapterdrop.variants.base import VariantModel
from adapterdrop.workloads.base import Workload


def prepare(scenario: Scenario, model: VariantModel, context: GroupContext) -> PreparedStep:
    """The prefill step of ``model`` (eval mode) on the group's batch as prompts."""
    model.eval()
    prompts = context.batch.input_ids
    if isinstance(model, ServingVariant):  # N adapters at once: the serving implementation's own step
        call = model.step("prefill", scenario.batch_size, scenario.seq_len)
    else:
        call = prefill_call(Served(model.lm, context.config), prompts, [0] * prompts.shape[0])
    precision = steps.precision_context(scenario)

    def prefill() -> None:
        with precision():
            call()

    return PreparedStep(scenario, model, prefill, None, None, None, context.batch, context.device)


WORKLOAD = Workload(
    "prefill",
    "decoder",
    "a P-token prompt per sequence into a fresh DynamicCache, logits of its last position (first token)",
    trains=False,
    prepare=prepare,
)
