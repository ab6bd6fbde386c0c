"""The serial protocol, byte for byte: CRC, COBS, every message (the receiving side: test_serial_stream).

Golden bytes are the worked examples of docs/serial-protocol.md; the tests also check that the page
still shows them, so the spec firmware is written from cannot drift from the code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motionctl.errors import MotionctlError, ProtocolError
from motionctl.hal.serial.protocol import (
    CRC_SIZE, DEVICE_WIDE, MAX_AXES, MAX_FRAME, PROTOCOL_VERSION, AxisFeedback, Capability, Command,
    CommandAck, CommandCode, DropReason, Event, FaultCode, Feedback, FrameError, Hello,
    HelloAck, Heartbeat, Message, MessageType, Nak, NakReason, NodeState, Result,
    Setpoint, Status, Stream, StreamAck, cobs_decode, cobs_encode, cobs_max_size, crc16, decode_frame, decode_payload,
    encode, encode_payload, fault_text, payload_size, wire_size,
)
from motionctl.hal.serial.stream import FrameDecoder

DOC = (Path(__file__).resolve().parents[3] / "docs" / "serial-protocol.md").read_text(encoding="utf-8")
SEEDED = settings(derandomize=True, max_examples=200, deadline=None)


def hexb(text: str) -> bytes:
    return bytes.fromhex(" ".join(text.split()))


def doc_shows(wire: bytes) -> bool:
    """Whether the doc contains these bytes as uppercase hex, across line breaks."""
    flat = " ".join(DOC.replace("`", " ").split())
    return wire.hex(" ").upper() in flat


def crc16_bitwise(data: bytes) -> int:
    """The doc's C reference, transcribed: an independent check of binascii.crc_hqx."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


# ---------------------------------------------------------------------------------------------- CRC
def test_crc_check_value():
    assert crc16(b"123456789") == 0x29B1
    assert crc16_bitwise(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF


@SEEDED
@given(st.binary(max_size=600))
def test_crc_matches_reference_and_residue_is_zero(data):
    crc = crc16(data)
    assert crc == crc16_bitwise(data)
    assert crc16(data + crc.to_bytes(2, "big")) == 0


# ---------------------------------------------------------------------------------------------- COBS
R = bytes(range(256))
COBS_VECTORS = [                         # Cheshire & Baker / Wikipedia, without the delimiter
    (b"", b"\x01"),
    (hexb("00"), hexb("01 01")),
    (hexb("00 00"), hexb("01 01 01")),
    (hexb("00 11 00"), hexb("01 02 11 01")),
    (hexb("11 22 00 33"), hexb("03 11 22 02 33")),
    (hexb("11 22 33 44"), hexb("05 11 22 33 44")),
    (hexb("11 00 00 00"), hexb("02 11 01 01 01")),
    (R[1:255], b"\xff" + R[1:255]),                                   # 254 non-zero bytes
    (R[0:255], b"\x01\xff" + R[1:255]),                               # 00 01 .. FE
    (R[1:256], b"\xff" + R[1:255] + b"\x02\xff"),                     # 01 .. FF
    (R[2:256] + b"\x00", b"\xff" + R[2:256] + b"\x01\x01"),           # 02 .. FF 00
    (R[3:256] + b"\x00\x01", b"\xfe" + R[3:256] + b"\x02\x01"),       # 03 .. FF 00 01
    (b"\x11" * 600, b"\xff" + b"\x11" * 254 + b"\xff" + b"\x11" * 254 + b"\x5d" + b"\x11" * 92),
]


@pytest.mark.parametrize("data, encoded", COBS_VECTORS, ids=[f"v{i}" for i in range(len(COBS_VECTORS))])
def test_cobs_known_vectors(data, encoded):
    assert cobs_encode(data) == encoded
    assert cobs_decode(encoded) == data


def test_cobs_decoder_accepts_redundant_final_01():
    assert cobs_decode(b"\xff" + R[1:255] + b"\x01") == R[1:255]


@pytest.mark.parametrize("bad", [b"", b"\x05\x11\x22", b"\x00", b"\x03\x11\x00", b"\x02\x11\x09\x22"])
def test_cobs_malformed_input_raises_frame_error(bad):
    with pytest.raises(FrameError) as err:
        cobs_decode(bad)
    assert err.value.reason is DropReason.BAD_COBS
    assert isinstance(err.value, ProtocolError) and isinstance(err.value, MotionctlError)


zero_heavy = st.lists(st.sampled_from([0, 0, 1, 0xFF]) | st.integers(0, 255), max_size=1200).map(bytes)
long_runs = st.lists(st.tuples(st.integers(1, 255), st.integers(0, 600)), max_size=4).map(
    lambda runs: b"\x00".join(bytes([v]) * n for v, n in runs))


@SEEDED
@given(st.binary(max_size=1200) | zero_heavy | long_runs)
def test_cobs_round_trip(data):
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert len(encoded) <= cobs_max_size(len(data))
    assert cobs_decode(encoded) == data


# ---------------------------------------------------------------------------------------------- golden
SETPOINT = Setpoint(seq=1000, host_tick=123456, targets=(100000, -2500, 0))
SETPOINT_WIRE = hexb("07 10 E8 03 40 E2 01 05 03 A0 86 01 05 3C F6 FF FF 01 01 01 03 A1 05 00")
ON = Status.READY | Status.ENABLED | Status.HOMED | Status.BRAKE_RELEASED
FEEDBACK = Feedback(seq=1000, device_time_us=5_000_123, state=NodeState.ENABLED, axes=(
    AxisFeedback(99_990, 12_000, 10, ON, 0),
    AxisFeedback(-2_497, -1_500, -3, ON, 0),
    AxisFeedback(0, 0, 0, Status.READY | Status.HOMED, 0)))
FEEDBACK_WIRE = hexb("""
    07 11 E8 03 BB 4B 4C 06 02 03 96 86 01 03 E0 2E 01 02 0A 01 01 03 03 03
    01 0F 3F F6 FF FF 24 FA FF FF FD FF FF FF 03 03 01 01 01 01 01 01 01 01
    01 01 01 01 01 03 01 01 01 03 C4 DA 00""")


def test_worked_example_setpoint_byte_exact():
    payload = encode_payload(SETPOINT)
    assert payload == hexb("10 E8 03 40 E2 01 00 03 A0 86 01 00 3C F6 FF FF 00 00 00 00")
    assert crc16(payload) == 0xA105 == crc16_bitwise(payload)
    assert encode(SETPOINT) == SETPOINT_WIRE
    assert len(SETPOINT_WIRE) == wire_size(MessageType.SETPOINT, 3) == 24
    assert decode_frame(SETPOINT_WIRE[:-1]) == SETPOINT
    assert doc_shows(SETPOINT_WIRE)


def test_worked_example_feedback_byte_exact():
    payload = encode_payload(FEEDBACK)
    assert len(payload) == payload_size(MessageType.FEEDBACK, 3) == 57
    assert crc16(payload) == 0xC4DA == crc16_bitwise(payload)
    assert encode(FEEDBACK) == FEEDBACK_WIRE
    assert len(FEEDBACK_WIRE) == wire_size(MessageType.FEEDBACK, 3) == 61
    decoded = decode_frame(FEEDBACK_WIRE[:-1])
    assert decoded == FEEDBACK and decoded.seq == SETPOINT.seq
    assert decoded.axes[0].flags == ON and Status.ENABLED not in decoded.axes[2].flags
    assert doc_shows(FEEDBACK_WIRE)


OTHER_GOLDEN = [
    (Hello(seq=1, version_minor=0, servo_rate_hz=1000, axis_count=3, watchdog_ms=20),
     "01 01 00 01 00 E8 03 03 14 00", 0xE924, "03 01 01 02 01 05 E8 03 03 14 03 E9 24 00"),
    (HelloAck(seq=1, result=Result.OK, version_major=1, version_minor=0, axis_count=3,
              capabilities=Capability.ABSOLUTE_ENCODERS | Capability.BRAKES | Capability.SIMULATED,
              max_servo_rate_hz=1000, device_name="motionctl-sim"),
     "02 01 00 00 01 00 03 13 00 00 00 E8 03 6D 6F 74 69 6F 6E 63 74 6C 2D 73 69 6D 00 00 00", 0xCBEC,
     "03 02 01 01 02 01 03 03 13 01 01 10 E8 03 6D 6F 74 69 6F 6E 63 74 6C 2D 73 69 6D 01 01 03 CB EC 00"),
    (Command(seq=5, command=CommandCode.ENABLE, axis_mask=0b111),
     "30 05 00 01 07 00 00 00", 0xF539, "03 30 05 03 01 07 01 01 03 F5 39 00"),
    (CommandAck(seq=5, command=CommandCode.ENABLE, result=Result.OK, axis_mask=0b111),
     "31 05 00 01 00 07 00 00 00", 0x5B60, "03 31 05 02 01 02 07 01 01 03 5B 60 00"),
    (Heartbeat(seq=7, state=NodeState.IDLE, time_us=1000),
     "20 07 00 01 E8 03 00 00", 0xA13A, "03 20 07 04 01 E8 03 01 03 A1 3A 00"),
    (Event(seq=2, device_time_us=5_000_500, axis=1, fault=FaultCode.FOLLOWING_ERROR, text_code=0),
     "40 02 00 34 4D 4C 00 01 02 00 00 00", 0xF9ED, "03 40 02 04 34 4D 4C 03 01 02 01 01 03 F9 ED 00"),
    (Nak(seq=9, rejected_type=MessageType.SETPOINT, reason=NakReason.AXIS_COUNT),
     "7F 09 00 10 05", 0xC9D2, "03 7F 09 05 10 05 C9 D2 00"),
    (Stream(seq=3, lookahead_ticks=15, mode=1),                                     # 1.1, docs §10.7
     "12 03 00 0F 00 01", 0x4D16, "03 12 03 02 0F 04 01 4D 16 00"),
    (StreamAck(seq=3, result=Result.OK, capacity_ticks=256),
     "13 03 00 00 00 01", 0x2487, "03 13 03 01 01 04 01 24 87 00"),
]


@pytest.mark.parametrize("message, payload, crc, wire", OTHER_GOLDEN, ids=lambda v: getattr(v, "TYPE", None)
                         and v.TYPE.name)
def test_doc_examples_of_every_other_message(message, payload, crc, wire):
    assert encode_payload(message) == hexb(payload)
    assert crc16(hexb(payload)) == crc
    assert encode(message) == hexb(wire)
    assert decode_frame(hexb(wire)[:-1]) == message
    assert doc_shows(hexb(wire)) and doc_shows(hexb(payload))


def test_doc_tables_match_the_code():
    for t in MessageType:
        assert re.search(rf"\| 0x{t.value:02X} \| {t.name} \|", DOC), t
    for code in FaultCode:
        assert f"| 0x{code.value:04X} | {code.name} | {code.text} |" in DOC, code
    for flag in Status:
        assert re.search(rf"\| {flag.value.bit_length() - 1} \| {flag.name} \|", DOC), flag
    assert f"version {PROTOCOL_VERSION[0]}.{PROTOCOL_VERSION[1]}" in DOC
    assert f"{MAX_FRAME} bytes before the delimiter" in DOC


# ---------------------------------------------------------------------------------------------- round trips
u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF_FFFF)
i32 = st.integers(-(2**31), 2**31 - 1)
name = st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=16)
axes = st.integers(1, MAX_AXES)
feedback_axis = st.builds(AxisFeedback, i32, i32, i32, u16, u16)

def _b(cls, **fields):
    return cls, st.builds(cls, **fields)


STRATEGIES = dict([
    _b(Hello, seq=u16, version_major=u8, version_minor=u8, servo_rate_hz=u16, axis_count=u8,
       watchdog_ms=u16),
    _b(HelloAck, seq=u16, result=st.sampled_from(Result), version_major=u8, version_minor=u8,
       axis_count=u8, capabilities=u32, max_servo_rate_hz=u16, device_name=name),
    _b(Setpoint, seq=u16, host_tick=u32, targets=st.lists(i32, min_size=1, max_size=MAX_AXES).map(tuple)),
    _b(Feedback, seq=u16, device_time_us=u32, state=st.sampled_from(NodeState),
       axes=st.lists(feedback_axis, min_size=1, max_size=MAX_AXES).map(tuple)),
    _b(Heartbeat, seq=u16, state=st.sampled_from(NodeState), time_us=u32),
    _b(Command, seq=u16, command=st.sampled_from(CommandCode), axis_mask=u32),
    _b(CommandAck, seq=u16, command=st.sampled_from(CommandCode), result=st.sampled_from(Result),
       axis_mask=u32),
    _b(Event, seq=u16, device_time_us=u32, axis=st.integers(0, MAX_AXES - 1) | st.just(DEVICE_WIDE),
       fault=u16, text_code=u16),
    _b(Nak, seq=u16, rejected_type=u8, reason=st.sampled_from(NakReason)),
    _b(Stream, seq=u16, lookahead_ticks=u16, mode=u8),
    _b(StreamAck, seq=u16, result=st.sampled_from(Result), capacity_ticks=u16),
])
MESSAGES = st.one_of(list(STRATEGIES.values()))


@SEEDED
@given(MESSAGES)
def test_every_message_round_trips(message):
    wire = encode(message)
    assert wire.endswith(b"\x00") and 0 not in wire[:-1]
    assert len(wire) <= MAX_FRAME + 1
    assert decode_frame(wire[:-1]) == message
    assert decode_payload(encode_payload(message)) == message
    decoder = FrameDecoder()
    assert decoder.feed(wire) == [message]
    assert decoder.stats.ok == 1 and decoder.stats.dropped == 0


def test_every_message_type_has_a_round_trip_strategy():
    assert set(STRATEGIES) == set(get_args(Message))
    assert {cls.TYPE for cls in STRATEGIES} == set(MessageType)


@pytest.mark.parametrize("n", range(1, MAX_AXES + 1))
def test_wire_size_bounds_frames_of_every_axis_count(n):
    sp = Setpoint(seq=1, host_tick=1, targets=(-1,) * n)              # no zero bytes: worst case
    fb = Feedback(seq=1, device_time_us=0xFFFFFFFF, state=NodeState.FAULT,
                  axes=(AxisFeedback(-1, -1, -1, 0xFFFF, 0xFFFF),) * n)
    assert len(encode(sp)) <= wire_size(MessageType.SETPOINT, n)
    assert len(encode(fb)) <= wire_size(MessageType.FEEDBACK, n) <= MAX_FRAME + 1


@pytest.mark.parametrize("make", [
    lambda: Setpoint(seq=0x1_0000, host_tick=0, targets=(0,)),
    lambda: Setpoint(seq=-1, host_tick=0, targets=(0,)),
    lambda: Setpoint(seq=0, host_tick=0, targets=(2**31,)),
    lambda: Setpoint(seq=0, host_tick=0, targets=()),
    lambda: Setpoint(seq=0, host_tick=0, targets=(0,) * (MAX_AXES + 1)),
    lambda: Command(seq=0, command=9, axis_mask=1),
    lambda: Heartbeat(seq=0, state=42, time_us=0),
    lambda: HelloAck(seq=0, result=0, version_major=1, version_minor=0, axis_count=1, capabilities=0,
                     max_servo_rate_hz=1000, device_name="x" * 17),
    lambda: HelloAck(seq=0, result=0, version_major=1, version_minor=0, axis_count=1, capabilities=0,
                     max_servo_rate_hz=1000, device_name="kamera-\u00fc"),
    lambda: Event(seq=0, device_time_us=0, axis=MAX_AXES, fault=0, text_code=0),
    lambda: Command(seq=0, command=CommandCode.ENABLE, axis_mask=2**32),
])
def test_messages_that_cannot_go_on_the_wire_raise_value_error(make):
    with pytest.raises(ValueError):
        encode(make())


def test_plain_ints_become_enums():
    msg = Command(seq=1, command=3, axis_mask=1)
    assert msg.command is CommandCode.QUICK_STOP
    assert decode_frame(encode(msg)[:-1]) == msg


# ---------------------------------------------------------------------------------------------- words
def test_fault_text_covers_known_vendor_and_unknown_codes():
    assert fault_text(0x0001) == FaultCode.WATCHDOG.text
    assert fault_text(0x8001) == "vendor-specific fault 0x8001"
    assert fault_text(0x0777) == "unknown fault 0x0777"
    assert AxisFeedback(0, 0, 0, 0x8000 | 1, 0).flags & Status.READY                # unknown bits kept


def test_crc_and_cobs_constants():
    assert CRC_SIZE == 2
    assert MAX_FRAME == cobs_max_size(payload_size(MessageType.FEEDBACK, MAX_AXES) + CRC_SIZE) == 526
