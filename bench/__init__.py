"""Benchmarks; each writes its figures to docs/benchmarks.md.

The benchmarks run from a checkout and reuse the test suite's support code (the real
Mosquitto / PostgreSQL fixtures, the hub-style acker). ``tests`` is not an installed
package, so the checkout's root is put on the import path here: ``safehome bench …``
then works from any directory, not only where ``python -m`` would find ``tests``.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
