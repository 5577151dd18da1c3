"""Stage 5, evaluation: held-out generation and scoring, what a depth choice is worth, lm-eval tasks.

A stage imports only earlier stages (tests/test_architecture.py)."""
