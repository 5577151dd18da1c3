"""Stage 1, the MAWT layer: depth-wise attention maps, the mixers, swapping the layer into a transformers model.

A stage imports only earlier stages (tests/test_architecture.py)."""
