"""Benchmarks: each prints its figures and appends them to docs/benchmarks-history.md
(``--no-write``: print only); docs/benchmarks.md is the summary, rebuilt from the history
(bench/summary.py). They reuse the harnesses of ``safehome.testing`` (real Mosquitto and
PostgreSQL, the hub-style acker), never the test suite (``tests/test_architecture.py``).
"""
