"""AxisScale: SI <-> encoder counts, with a lens calibration table interpolated as numpy's interp does."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from motionctl.hal.driver import AxisScale

#: A focus calibration (normalised lens units -> counts), uneven like a real one.
TABLE = np.array([[0.0, 0.0], [0.2, 9000.0], [0.55, 31000.0], [1.0, 65535.0]])


@settings(max_examples=200, derandomize=True)
@given(st.floats(-0.5, 1.5, allow_nan=False))
def test_calibrated_conversion_is_numpys_interpolation_both_ways(value):
    scale = AxisScale("focus", 1.0, TABLE)
    assert scale.to_counts(value) == int(round(float(np.interp(value, TABLE[:, 0], TABLE[:, 1]))))
    counts = value * 65535.0
    assert abs(scale.from_counts(counts) - float(np.interp(counts, TABLE[:, 1], TABLE[:, 0]))) < 1e-12


def test_without_a_table_counts_scale_linearly():
    scale = AxisScale("track", 1e6)
    assert scale.to_counts(0.5) == 500_000 and scale.from_counts(250_000) == 0.25
