"""CAN bus budget: frame lengths checked against a bit-level frame builder, loads against hand sums."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motionctl.errors import InputError
from motionctl.hal.canopen.busload import BusLoad, bus_load, cycle_bits, describe_bus_load, frame_bits

SETTINGS = settings(derandomize=True, database=None, max_examples=400, deadline=None)


# --- a bit-level classical CAN standard data frame, to check the formula against ---------------------

def _bits(value: int, width: int) -> list[int]:
    return [(value >> (width - 1 - i)) & 1 for i in range(width)]


def _crc15(bits: list[int]) -> int:
    """CAN CRC-15 (polynomial 0x4599), over SOF .. end of data, as ISO 11898-1 specifies."""
    crc = 0
    for bit in bits:
        nxt = bit ^ (crc >> 14 & 1)
        crc = (crc << 1) & 0x7FFF
        if nxt:
            crc ^= 0x4599
    return crc


def wire_bits(can_id: int, data: bytes) -> tuple[int, int]:
    """(stuffed region length before stuffing, number of stuff bits) of a real frame."""
    head = [0] + _bits(can_id, 11) + [0, 0, 0] + _bits(len(data), 4)   # SOF, ID, RTR, IDE, r0, DLC
    for byte in data:
        head += _bits(byte, 8)
    region = head + _bits(_crc15(head), 15)
    stuff, run, last = 0, 0, None
    for bit in region:
        if bit == last:
            run += 1
        else:
            run, last = 1, bit
        if run == 5:                   # insert the complement; it starts a new run of length 1
            stuff += 1
            last, run = 1 - bit, 1
    return len(region), stuff


def test_frame_bits_known_values() -> None:
    # 47 + 8n unstuffed (SOF 1, ID 11, RTR 1, IDE 1, r0 1, DLC 4, data 8n, CRC 15, CRC delim 1,
    # ACK 2, EOF 7, intermission 3); worst-case stuffing adds (34 + 8n - 1) // 4.
    assert frame_bits(8, worst_case_stuffing=False) == 111       # Linux can/length.h: 111
    assert frame_bits(8) == 135                                  # Linux can/length.h: 135
    assert frame_bits(0, worst_case_stuffing=False) == 47
    assert frame_bits(0) == 55                                   # SYNC: 47 + 33 // 4 = 47 + 8
    assert frame_bits(6) == 115                                  # 95 + 81 // 4 = 95 + 20
    assert frame_bits(4) == 95                                   # 79 + 65 // 4 = 79 + 16
    assert [frame_bits(n) for n in range(9)] == [55, 65, 75, 85, 95, 105, 115, 125, 135]


def test_frame_region_length_matches_formula() -> None:
    for n in range(9):
        region, _ = wire_bits(0x123, bytes(n))
        assert region == 34 + 8 * n
        assert region + 13 == frame_bits(n, worst_case_stuffing=False)


@SETTINGS
@given(can_id=st.integers(0, 0x7FF), data=st.binary(max_size=8))
def test_worst_case_bounds_every_real_frame(can_id: int, data: bytes) -> None:
    region, stuff = wire_bits(can_id, data)
    assert region + 13 + stuff <= frame_bits(len(data))


def test_bound_is_nearly_reached() -> None:
    # Frames full of equal bits stuff heavily; the bound must not be loose by more than a few bits.
    worst = max(wire_bits(can_id, bytes([fill]) * 8)[1]
                for can_id in (0x000, 0x7FF, 0x0F0, 0x787) for fill in (0x00, 0xFF, 0x0F, 0xF0, 0x3C))
    assert 135 - 111 - worst <= 8


def test_frame_bits_rejects_fd_lengths() -> None:
    for bad in (-1, 9, 64):
        with pytest.raises(InputError, match="0..8 data bytes"):
            frame_bits(bad)


# --- bus load against hand calculations ------------------------------------------------------------

def test_one_axis_at_1khz() -> None:
    # 6-byte RPDO 115 + 6-byte TPDO 115 + SYNC 55 = 285 bits per cycle
    # x 1000 Hz = 285 000 bit/s = 28.5 % of 1 Mbit/s; 3 frames per cycle = 3 000 frames/s;
    # ceiling 1 000 000 / 285 = 3 508.77 Hz.
    load = bus_load(1, 1000, 6, 6)
    assert load.frames_per_s == pytest.approx(3000)
    assert load.bits_per_s == pytest.approx(285_000)
    assert load.load_fraction == pytest.approx(0.285)
    assert load.max_rate_hz == pytest.approx(1_000_000 / 285)


def test_seven_axes_at_500hz() -> None:
    # 7 x (115 + 115) + 55 = 1 665 bits per cycle; x 500 = 832 500 bit/s = 83.25 %;
    # 15 frames per cycle = 7 500 frames/s; ceiling 1e6 / 1665 = 600.6 Hz.
    load = bus_load(7, 500, 6, 6)
    assert load == BusLoad(frames_per_s=7500, bits_per_s=832_500, load_fraction=0.8325,
                           max_rate_hz=pytest.approx(600.6006))
    assert cycle_bits(7, 6, 6) == 1665


def test_eight_byte_pdos_without_sync_at_500k() -> None:
    # 4 x (135 + 135) = 1 080 bits per cycle, no SYNC; x 250 Hz = 270 000 bit/s = 54 % of 500 kbit/s;
    # ceiling 500 000 / 1 080 = 462.96 Hz.
    load = bus_load(4, 250, 8, 8, bitrate=500_000, sync=False)
    assert load.frames_per_s == pytest.approx(2000)
    assert load.bits_per_s == pytest.approx(270_000)
    assert load.load_fraction == pytest.approx(0.54)
    assert load.max_rate_hz == pytest.approx(500_000 / 1080)


def test_extra_frames_count_as_eight_byte_frames() -> None:
    # 2 axes, 4-byte PDOs: 2 x (95 + 95) + 55 = 435 bits per cycle x 1000 Hz = 435 000 bit/s;
    # extra 100 frames/s x 135 bits = 13 500 bit/s -> 448 500 bit/s = 44.85 %;
    # ceiling (1 000 000 - 13 500) / 435 = 2 267.8 Hz.
    load = bus_load(2, 1000, 4, 4, extra_frames_per_s=100)
    assert load.frames_per_s == pytest.approx(5100)
    assert load.bits_per_s == pytest.approx(448_500)
    assert load.load_fraction == pytest.approx(0.4485)
    assert load.max_rate_hz == pytest.approx(986_500 / 435)


def test_unstuffed_is_lighter() -> None:
    assert bus_load(3, 1000, 8, 8, worst_case_stuffing=False).bits_per_s == 1000 * (3 * 222 + 47)


@SETTINGS
@given(axes=st.integers(1, 32), rate=st.floats(1, 5000), rpdo=st.integers(0, 8), tpdo=st.integers(0, 8),
       sync=st.booleans())
def test_load_is_one_at_max_rate(axes: int, rate: float, rpdo: int, tpdo: int, sync: bool) -> None:
    load = bus_load(axes, rate, rpdo, tpdo, sync=sync)
    at_max = bus_load(axes, load.max_rate_hz, rpdo, tpdo, sync=sync)
    assert at_max.load_fraction == pytest.approx(1.0)
    assert load.load_fraction == pytest.approx(rate / load.max_rate_hz)


def test_bad_arguments() -> None:
    for kwargs in (dict(axes=0), dict(rate_hz=0.0), dict(rate_hz=math.nan), dict(bitrate=0),
                   dict(extra_frames_per_s=-1.0), dict(rpdo_bytes=9)):
        args = dict(axes=1, rate_hz=1000.0, rpdo_bytes=6, tpdo_bytes=6) | kwargs
        with pytest.raises(InputError):
            bus_load(**args)


# --- hw info lines -----------------------------------------------------------------------------------

def test_hw_info_lines() -> None:
    lines = describe_bus_load(7, 500, 6, 6)
    assert lines[0] == "7 axes at 500 Hz: 7 500 frames/s, 0.83 Mbit/s, 83 % of 1 Mbit/s (max 600 Hz)"
    assert lines[1] == ("per cycle: 7 RPDO x 6 bytes (115 bits), 7 TPDO x 6 bytes (115 bits), "
                        "SYNC (55 bits) = 1 665 bits, worst-case bit stuffing")
    assert len(lines) == 2


def test_hw_info_lines_over_budget() -> None:
    # 7 axes at 1 kHz: 1 665 000 bit/s = 167 % of 1 Mbit/s.
    lines = describe_bus_load(7, 1000, 6, 6, extra_frames_per_s=50)
    assert lines[0].startswith("7 axes at 1000 Hz: 15 050 frames/s, 1.67 Mbit/s, 167 % of 1 Mbit/s")
    assert "other frames/s" in lines[2]
    assert lines[-1].startswith("does not fit: lower the servo rate to 596 Hz or less")


def test_hw_info_single_axis_and_slow_bus() -> None:
    lines = describe_bus_load(1, 250, 8, 8, bitrate=125_000, sync=False)
    # 270 bits x 250 Hz = 67 500 bit/s = 54 % of 125 kbit/s; ceiling 125 000 / 270 = 462.96 Hz.
    assert lines[0] == "1 axis at 250 Hz: 500 frames/s, 0.07 Mbit/s, 54 % of 125 kbit/s (max 462 Hz)"
    assert "SYNC" not in lines[1]
