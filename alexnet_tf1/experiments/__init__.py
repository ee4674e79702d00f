"""The papers' experiments, seed runs and the fine-tuning walk-through."""
