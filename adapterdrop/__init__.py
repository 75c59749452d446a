"""adapterdrop: benchmark and profile the efficiency of adapters in transformers.

Reproduces the measurements of AdapterDrop (Rücklé et al., EMNLP 2021) on any machine: full fine-tuning,
bottleneck adapters, AdapterDrop, parallel multi-task inference, AdapterFusion and pruned AdapterFusion,
built on `transformers` encoders with random weights.
"""

__version__ = "0.1.0"
