"""CAN bus budget for cyclic synchronous streaming: will N axes at R Hz fit on the bus?

Why: in CSP every axis needs a setpoint RPDO and a feedback TPDO every servo cycle, plus one SYNC.  At
1 Mbit/s that budget runs out at a few thousand frames per second, and a bus that is over budget does
not fail loudly: low-priority frames (the feedback) arrive late, then the drives' following errors trip.
``motionctl hw info`` prints these figures before anything moves.

Frame length (classical CAN, 11-bit identifier, data frame, ``n`` data bytes):

* Unstuffed: SOF 1 + identifier 11 + RTR 1 + IDE 1 + r0 1 + DLC 4 + data 8n + CRC 15 + CRC delimiter 1
  + ACK slot 1 + ACK delimiter 1 + EOF 7 + intermission 3 = ``47 + 8n`` bits.
* Bit stuffing applies from SOF to the end of the CRC sequence: ``34 + 8n`` bits.  A stuff bit follows
  five equal bits, and in the worst case (the stuff bit itself starting a new run) one is added every
  four bits after the first, so at most ``(34 + 8n - 1) // 4`` stuff bits.
* Worst case: ``47 + 8n + (34 + 8n - 1) // 4`` bits, i.e. 55 bits for a SYNC (n = 0), 115 for n = 6,
  135 for n = 8 (111 unstuffed).

Sources: R. I. Davis, A. Burns, R. J. Bril, J. J. Lukkien, "Controller Area Network (CAN) schedulability
analysis: Refuted, revisited and revised", Real-Time Systems 35(3), 2007, eq. for C_m with g = 34 for
standard identifiers; and the Linux kernel ``include/linux/can/length.h`` (``can_bitstuffing_len`` =
``len + (len - 1) / 4``; its stuffed span also counts the CRC delimiter, which gives the same integer for
every n because 34 + 8n is never a multiple of 4), which lists 111 / 135 bits for an 8-byte standard
frame without / with stuffing.  Worst-case stuffing is deliberately pessimistic: real payloads stuff less.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from motionctl.errors import InputError

#: Bits of a standard data frame outside the data field, including the 3-bit intermission.
OVERHEAD_BITS: Final = 47
#: Bits of a standard data frame, outside the data field, that are subject to bit stuffing.
STUFFED_OVERHEAD_BITS: Final = 34
#: Extra frames (heartbeats, EMCY, SDO) are budgeted as 8-byte frames, the longest there are.
EXTRA_FRAME_BYTES: Final = 8


def frame_bits(data_length: int, worst_case_stuffing: bool = True) -> int:
    """Bits a classical CAN standard (11-bit) data frame with ``data_length`` bytes occupies on the bus.

    ``47 + 8n`` bits unstuffed (including the 3-bit intermission before the next frame), plus at most
    ``(34 + 8n - 1) // 4`` stuff bits.  See the module docstring for the derivation and sources.
    """
    if not isinstance(data_length, int) or not 0 <= data_length <= 8:
        raise InputError(f"classical CAN frames carry 0..8 data bytes, not {data_length!r}")
    bits = OVERHEAD_BITS + 8 * data_length
    if worst_case_stuffing:
        bits += (STUFFED_OVERHEAD_BITS + 8 * data_length - 1) // 4
    return bits


@dataclass(frozen=True)
class BusLoad:
    """Bus figures for one configuration.

    ``load_fraction`` is bits per second over the bitrate (1.0 = the bus is full).  ``max_rate_hz`` is
    the servo rate at which the same axes (plus the same extra traffic) would fill the bus: a ceiling,
    not a recommendation.
    """

    frames_per_s: float
    bits_per_s: float
    load_fraction: float
    max_rate_hz: float


def cycle_bits(axes: int, rpdo_bytes: int, tpdo_bytes: int, *, sync: bool = True,
               worst_case_stuffing: bool = True) -> int:
    """Bits per servo cycle: one RPDO and one TPDO per axis, plus one SYNC (0 data bytes)."""
    if not isinstance(axes, int) or axes < 1:
        raise InputError(f"number of axes must be a positive integer, not {axes!r}")
    per_axis = (frame_bits(rpdo_bytes, worst_case_stuffing) + frame_bits(tpdo_bytes, worst_case_stuffing))
    return axes * per_axis + (frame_bits(0, worst_case_stuffing) if sync else 0)


def bus_load(axes: int, rate_hz: float, rpdo_bytes: int, tpdo_bytes: int, bitrate: int = 1_000_000,
             sync: bool = True, extra_frames_per_s: float = 0.0, *,
             worst_case_stuffing: bool = True) -> BusLoad:
    """Frames, bits and load for ``axes`` axes streaming at ``rate_hz`` on one bus.

    Per cycle: one RPDO of ``rpdo_bytes`` (setpoint) and one TPDO of ``tpdo_bytes`` (feedback) per axis,
    and a SYNC if ``sync``.  ``extra_frames_per_s`` (heartbeats, EMCY, SDO) are counted as 8-byte frames.
    """
    if not (isinstance(rate_hz, (int, float)) and math.isfinite(rate_hz) and rate_hz > 0):
        raise InputError(f"servo rate must be a positive number of Hz, not {rate_hz!r}")
    if not (isinstance(bitrate, int) and bitrate > 0):
        raise InputError(f"bitrate must be a positive number of bit/s, not {bitrate!r}")
    if not (math.isfinite(extra_frames_per_s) and extra_frames_per_s >= 0):
        raise InputError(f"extra frames per second must be >= 0, not {extra_frames_per_s!r}")
    per_cycle = cycle_bits(axes, rpdo_bytes, tpdo_bytes, sync=sync, worst_case_stuffing=worst_case_stuffing)
    frames_per_cycle = 2 * axes + (1 if sync else 0)
    extra_bits = extra_frames_per_s * frame_bits(EXTRA_FRAME_BYTES, worst_case_stuffing)
    bits_per_s = rate_hz * per_cycle + extra_bits
    return BusLoad(
        frames_per_s=rate_hz * frames_per_cycle + extra_frames_per_s,
        bits_per_s=bits_per_s,
        load_fraction=bits_per_s / bitrate,
        max_rate_hz=max(0.0, (bitrate - extra_bits) / per_cycle),
    )


def _grouped(value: float) -> str:
    """12345.6 -> '12 346' (space as thousands separator, as on the rig's paperwork)."""
    return f"{round(value):,}".replace(",", " ")


def _hz(rate: float) -> str:
    return f"{rate:.0f}" if float(rate).is_integer() else f"{rate:.1f}"


def _bitrate(bitrate: int) -> str:
    if bitrate % 1_000_000 == 0:
        return f"{bitrate // 1_000_000} Mbit/s"
    if bitrate % 1000 == 0:
        return f"{bitrate // 1000} kbit/s"
    return f"{bitrate} bit/s"


def describe_bus_load(axes: int, rate_hz: float, rpdo_bytes: int, tpdo_bytes: int,
                      bitrate: int = 1_000_000, sync: bool = True,
                      extra_frames_per_s: float = 0.0) -> list[str]:
    """Human-readable lines for ``motionctl hw info``.

    First line, e.g. "7 axes at 500 Hz: 7 500 frames/s, 0.83 Mbit/s, 83 % of 1 Mbit/s (max 600 Hz)";
    then the per-cycle breakdown; then, if the bus is over budget, what to change.  The maximum rate is
    rounded down, so it never promises more than fits.
    """
    load = bus_load(axes, rate_hz, rpdo_bytes, tpdo_bytes, bitrate, sync, extra_frames_per_s)
    noun = "axis" if axes == 1 else "axes"
    lines = [
        f"{axes} {noun} at {_hz(rate_hz)} Hz: {_grouped(load.frames_per_s)} frames/s, "
        f"{load.bits_per_s / 1e6:.2f} Mbit/s, {load.load_fraction * 100:.0f} % of {_bitrate(bitrate)} "
        f"(max {math.floor(load.max_rate_hz)} Hz)",
    ]
    parts = [f"{axes} RPDO x {rpdo_bytes} bytes ({frame_bits(rpdo_bytes)} bits)",
             f"{axes} TPDO x {tpdo_bytes} bytes ({frame_bits(tpdo_bytes)} bits)"]
    if sync:
        parts.append(f"SYNC ({frame_bits(0)} bits)")
    per_cycle = cycle_bits(axes, rpdo_bytes, tpdo_bytes, sync=sync)
    lines.append(f"per cycle: {', '.join(parts)} = {_grouped(per_cycle)} bits, worst-case bit stuffing")
    if extra_frames_per_s:
        lines.append(f"plus {_grouped(extra_frames_per_s)} other frames/s (heartbeat, EMCY, SDO) "
                     f"counted as {EXTRA_FRAME_BYTES}-byte frames")
    if load.load_fraction > 1.0:
        lines.append(f"does not fit: lower the servo rate to {math.floor(load.max_rate_hz)} Hz or less, "
                     "shorten the PDOs, or split the axes over two CAN buses")
    return lines
