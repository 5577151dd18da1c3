"""Stage 4, training: the run config, checks against the base model, fine-tuning and GRPO, checkpoints.

A stage imports only earlier stages (tests/test_architecture.py)."""
