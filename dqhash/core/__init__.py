"""The domain: contracts, canonical hashing, classification, windows, deadlines, codec, records.

Pure: the standard library and orjson only, no I/O, no framework (enforced by ``tests/unit/test_layers.py``).
This is where correctness lives.
"""
