"""Design-space search for CNNs under FLOPs, memory-access and latency budgets."""

__version__ = "0.1.0"
