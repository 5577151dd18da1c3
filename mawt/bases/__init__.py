"""Stage 3, base models that run here: the micro Qwen2 base and the paper-geometry stand-in.

A stage imports only earlier stages (tests/test_architecture.py)."""
