"""Stage 6, statistics: intervals, paired differences, equivalence, power, and their simulation.

A stage imports only earlier stages (tests/test_architecture.py)."""

DEFAULT_MARGIN = 0.03  # equivalence margin (absolute, on a 0-1 score) when neither study nor setup sets one
# (here, not in `paired`: the Snakefile reads it through mawt.studies.study at every invocation, without scipy)
