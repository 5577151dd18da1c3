"""Stage 7, studies: setups and ablation YAMLs resolved into runs, baselines, the power plan.

A stage imports only earlier stages (tests/test_architecture.py)."""
