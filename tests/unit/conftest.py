"""The fast layer: pure functions, no Redis, no database, no processes.

`python -m pytest tests/unit` starts no platform (see tests/conftest.py) and
runs in a couple of seconds; nothing here may use the platform's fixtures.
"""
