"""The hot-path primitives, from the C extension ``jetflow._speedups`` when it is built.

Every function here has a pure-Python reference implementation in its own module; the C
versions must give the same result for every input (``tests/codec/test_speedups.py`` checks
this on the corpus and on fuzzed bytes). Set ``JETFLOW_PURE_PYTHON=1`` to use the references.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from jetflow.codec import canonical, car, envelope, record, rfc3339

render_record: Callable[[bytes], bytes] = record.render_record
check_car: Callable[[bytes], None] = car.check_car
find_block: Callable[[bytes, bytes], bytes | None] = car.find_block
is_rfc3339: Callable[[str], bool] = rfc3339.is_rfc3339
commit_json: Callable[..., bytes] = envelope.commit_json
is_canonical_frame: Callable[[bytes, Any, Any], bool] = canonical.is_canonical_frame

speedups: Any = None
if not os.environ.get("JETFLOW_PURE_PYTHON"):
    try:
        from jetflow import _speedups as speedups  # type: ignore[attr-defined,no-redef]
    except ImportError:
        speedups = None

if speedups is not None:
    render_record = speedups.render_record
    check_car = speedups.check_car
    find_block = speedups.find_block
    is_rfc3339 = speedups.is_rfc3339
    commit_json = speedups.commit_json
    is_canonical_frame = speedups.is_canonical_frame

USING_SPEEDUPS = speedups is not None
