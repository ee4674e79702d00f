"""The layer builder and the CPU kernel formulations it picks by ISA."""
