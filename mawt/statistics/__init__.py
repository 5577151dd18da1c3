"""Stage 6, statistics: intervals, paired differences, equivalence, power, and their simulation.

A stage imports only earlier stages (tests/test_architecture.py)."""
