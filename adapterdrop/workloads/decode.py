"""The decoder family's ``decode``: one new token per sequence against a KV cache of P tokens.

The step is :func:`adapterdrop.serving.workloads.decode_call` on the variant's causal LM (the same call the
multi-adapter serving measures): the B prompts of P tokens are prefilled once, untimed, into a
``transformers`` ``StaticCache`` of P + 1 positions; a step feeds one token per sequence at position P,
and then ``crop(-1)`` moves the cache's length back to P (a static cache keeps its buffers; nothing is
copied). So every timed step is the same step against exactly P cached tokens, however many run. A step
produces B tokens, one per sequence; its time is the per-token latency.

Memory: the cache holds P + 1 positions of keys and values between steps
(:func:`adapterdrop.families.decoder.kv_cache_bytes`). Traffic (:func:`bytes_per_step`): a step reads every
weight once (the input embedding only in the B rows it looks up, unless it is tied to the LM head, which
reads it whole) and the P + 1 cached keys and values of every sequence; that over the step's time and the
device's measured bandwidth is the decode analogue of MFU (:func:`bandwidth_utilization`).
"""

from __future__ import annotations

from torch import nn

from adapterdrop.families.decoder import kv_cache_bytes
from adapterdrop.measure import step as steps
from adapterdrop.measure.types import GroupContext, PreparedStep
from adapterdrop.scenario import Scenario
from adapterdrop.serving.variant import ServingVariant
from adapterdrop.serving.workloads import Served, decode_call
from adapterdrop.variants.base import VariantModel
from adapterdrop.workloads.base import Produced, Workload


def prepare(scenario: Scenario, model: VariantModel, context: GroupContext) -> PreparedStep:
    """The decode step of ``model`` (eval mode): the group's batch is the prompts, prefilled here once; the
    new token of each sequence is its prompt's last token (any token costs the same)."""
    model.eval()
    prompts = context.batch.input_ids
    rows = [0] * prompts.shape[0]
    if isinstance(model, ServingVariant):  # N adapters at once: the serving implementation's own step
        call = model.step("decode", scenario.batch_size, scenario.seq_len)
    else:
        call = decode_call(Served(model.lm, context.config), prompts, rows, prompts[:, -1:].clone())
    precision = steps.precision_context(scenario)

    def decode() -> None:
        with precision():
            call()

    return PreparedStep(scenario, model, decode, None, None, None, context.batch, context.device)


def one_token(scenario: Scenario) -> Produced:
    """A decode step: one new token for each of the B sequences."""
    return Produced(scenario.batch_size, scenario.batch_size)


def weight_bytes_read(lm: nn.Module, batch_size: int) -> int:
    """Bytes of weights one decode step of ``batch_size`` sequences reads: every distinct parameter once,
    except an input embedding not tied to the output layer, of which only ``batch_size`` rows are read."""
    embedding = lm.get_input_embeddings().weight
    output = lm.get_output_embeddings()
    tied = output is not None and output.weight.data_ptr() == embedding.data_ptr()
    seen: dict[int, int] = {}
    for parameter in lm.parameters():
        seen[parameter.data_ptr()] = parameter.numel() * parameter.element_size()
    if not tied:
        row = embedding.shape[1] * embedding.element_size()
        seen[embedding.data_ptr()] = min(batch_size, embedding.shape[0]) * row
    return sum(seen.values())


def bytes_per_step(lm: nn.Module, scenario: Scenario) -> int:
    """Bytes one decode step reads at least: its weights (:func:`weight_bytes_read`) and the keys and values
    of the P + 1 positions its attention reads in every layer, for every sequence."""
    element = next(lm.parameters()).element_size()
    cache = kv_cache_bytes(lm.config, scenario.batch_size, scenario.seq_len + 1, element)
    return weight_bytes_read(lm, scenario.batch_size) + cache


def bandwidth_utilization(bytes_read: float, seconds: float, bandwidth_bytes_s: float) -> float:
    """``bytes_read / seconds / bandwidth_bytes_s``: the share of the measured bandwidth a step reaches."""
    return bytes_read / seconds / bandwidth_bytes_s


WORKLOAD = Workload(
    "decode",
    "decoder",
    "one new token per sequence against a StaticCache of P tokens, cropped back to P after every step",
    trains=False,
    produced=one_token,
    extra_positions=1,
    prepare=prepare,
)
