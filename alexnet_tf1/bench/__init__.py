"""How fast: the benchmark, its timing, the Keras twins, FLOPs, the machine."""
