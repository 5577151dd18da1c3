"""Stage 0, used by every stage: atomic writes, the one YAML reader, number ranges, the run environment, result paths.

A stage imports only earlier stages (tests/test_architecture.py)."""
