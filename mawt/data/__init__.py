"""Stage 2, data: puzzles, the fine-tuning rows and their train / held-out split, the prompt format.

A stage imports only earlier stages (tests/test_architecture.py)."""
