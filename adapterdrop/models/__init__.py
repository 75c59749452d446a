"""Model building blocks: presets, the layer runner, adapters, fusion and heads."""
