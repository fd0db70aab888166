"""Training: long-memory tasks, gradient clipping and the training loop."""
