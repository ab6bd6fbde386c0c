"""The receiving side of the serial protocol: the streaming decoder's drops and resync, sequence numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from motionctl.hal.serial.protocol import (MAX_FRAME, DropReason, Heartbeat, NodeState, cobs_encode, crc16, encode,
                                           encode_payload)
from motionctl.hal.serial.stream import FrameDecoder, SeqVerdict, SequenceTracker
from tests.hal.serial.test_protocol import (FEEDBACK, FEEDBACK_WIRE, MESSAGES, OTHER_GOLDEN, SEEDED, SETPOINT,
                                           SETPOINT_WIRE)


# ---------------------------------------------------------------------------------------------- decoder
def frame_of(payload: bytes) -> bytes:
    """Frame an arbitrary payload correctly (valid COBS + CRC), to reach the checks behind them."""
    return cobs_encode(payload + crc16(payload).to_bytes(2, "big")) + b"\x00"


@pytest.mark.parametrize("wire, reason", [
    (b"\x02\x10\x00", DropReason.SHORT),                                   # 1 byte after COBS
    (frame_of(b"\x20\x01"), DropReason.SHORT),                             # 2-byte payload + CRC
    (b"\x09\x10\xe8\x03\x00", DropReason.BAD_COBS),                     # code runs past the end
    (SETPOINT_WIRE[:5] + SETPOINT_WIRE[6:], DropReason.CORRUPT_CRC),      # one byte lost inside a run
    (frame_of(b"\x55\x01\x00\x00"), DropReason.UNKNOWN_TYPE),
    (frame_of(b"\x00\x01\x00"), DropReason.UNKNOWN_TYPE),
    (frame_of(encode_payload(SETPOINT)[:-1]), DropReason.BAD_LENGTH),     # record cut short
    (frame_of(encode_payload(SETPOINT) + b"\x00" * 4), DropReason.BAD_LENGTH),  # count says 3, holds 4
    (frame_of(encode_payload(Heartbeat(seq=1, state=0, time_us=0)) + b"\x00"), DropReason.BAD_LENGTH),
    (frame_of(b"\x10\x01\x00" + b"\x00" * 5), DropReason.BAD_VALUE),       # SETPOINT of 0 axes
    (frame_of(b"\x20\x01\x00\x09" + b"\x00" * 4), DropReason.BAD_VALUE),   # HEARTBEAT state 9
    (frame_of(b"\x30\x01\x00\x07" + b"\x00" * 4), DropReason.BAD_VALUE),   # COMMAND 7
    (frame_of(b"\x40\x01\x00" + b"\x00" * 4 + b"\x40" + b"\x00" * 4), DropReason.BAD_VALUE),  # EVENT axis 64
    (b"\x01" * (MAX_FRAME + 1) + b"\x00", DropReason.OVERSIZE),
])
def test_decoder_drops_and_counts_each_kind(wire, reason):
    decoder = FrameDecoder()
    assert decoder.feed(wire + SETPOINT_WIRE) == [SETPOINT]                # and is back in step
    stats = vars(decoder.stats)
    assert stats[reason.value] == 1 and decoder.stats.dropped == 1 and decoder.stats.ok == 1


def test_empty_frames_are_idle_fill_not_errors():
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00\x00\x00" + SETPOINT_WIRE + b"\x00\x00") == [SETPOINT]
    assert decoder.stats.dropped == 0


def test_unknown_name_bytes_do_not_drop_the_handshake():
    payload = bytearray(encode_payload(OTHER_GOLDEN[1][0]))
    payload[13:16] = b"\xc3\xbcx"
    msg = FrameDecoder().feed(frame_of(bytes(payload)))[0]
    assert msg.device_name.startswith("??x")


def test_resynchronises_after_noise_without_delimiters():
    decoder = FrameDecoder()
    frames = [Heartbeat(seq=i, state=NodeState.IDLE, time_us=i) for i in range(3)]
    noise = bytes(range(1, 200))                                            # no 0x00 in it
    got = decoder.feed(noise + b"".join(encode(f) for f in frames))
    assert got == frames[1:]                                               # noise costs one frame
    assert decoder.stats.dropped == 1 and decoder.stats.ok == 2
    got = decoder.feed(noise + b"\x00" + b"".join(encode(f) for f in frames))
    assert got == frames                                                   # a leading 0x00 saves it


def test_endless_garbage_does_not_grow_the_buffer():
    decoder = FrameDecoder()
    for _ in range(50):
        assert decoder.feed(b"\x5a" * 997) == []
        assert len(decoder._buf) <= MAX_FRAME
    assert decoder.stats.oversize == 1
    assert decoder.feed(b"\x00" + SETPOINT_WIRE) == [SETPOINT]


segments = st.lists(st.one_of(MESSAGES.map(lambda m: ("frame", m)), st.binary(min_size=1, max_size=80).map(
    lambda b: ("noise", b))), max_size=25)


@SEEDED
@given(segments, st.lists(st.integers(1, 64), min_size=1, max_size=10))
def test_noise_interleaved_with_frames_yields_exactly_the_clean_frames(segs, cuts):
    stream = b"".join(encode(x) if kind == "frame" else x for kind, x in segs)
    # A frame survives unless noise without a trailing 0x00 runs straight into it.
    expected, prev = [], None
    for kind, x in segs:
        spoiled = prev is not None and prev[0] == "noise" and not prev[1].endswith(b"\x00")
        if kind == "frame" and not spoiled:
            expected.append(x)
        prev = (kind, x)
    # Every non-empty chunk between delimiters that is not a clean frame must be counted as dropped.
    clean = {encode(m)[:-1] for m in expected}
    chunks = [c for c in stream.split(b"\x00")[:-1] if c]      # the part after the last 0x00 is pending
    garbage = [c for c in chunks if c not in clean]
    decoder, got, i, k = FrameDecoder(), [], 0, 0
    while i < len(stream):                                                  # arbitrary read sizes
        got += decoder.feed(stream[i:i + cuts[k % len(cuts)]])
        i, k = i + cuts[k % len(cuts)], k + 1
    assert got == expected
    assert decoder.stats.ok == len(expected)
    assert decoder.stats.dropped == len(garbage)


@pytest.mark.parametrize("message", [SETPOINT, FEEDBACK], ids=["setpoint", "feedback"])
def test_every_single_bit_flip_is_caught_by_the_crc(message):
    raw = encode_payload(message)
    raw += crc16(raw).to_bytes(2, "big")
    decoder = FrameDecoder()
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert decoder.feed(cobs_encode(bytes(flipped)) + b"\x00") == []
    assert decoder.stats.corrupt_crc == len(raw) * 8 == decoder.stats.dropped


@SEEDED
@given(MESSAGES, st.data())
def test_double_bit_flips_are_caught_by_the_crc(message, data):
    raw = bytearray(encode_payload(message))
    raw += crc16(bytes(raw)).to_bytes(2, "big")
    a, b = data.draw(st.lists(st.integers(0, len(raw) * 8 - 1), min_size=2, max_size=2, unique=True))
    for bit in (a, b):
        raw[bit // 8] ^= 1 << (bit % 8)
    decoder = FrameDecoder()
    assert decoder.feed(cobs_encode(bytes(raw)) + b"\x00") == []
    assert decoder.stats.corrupt_crc == 1


@pytest.mark.parametrize("wire", [SETPOINT_WIRE, FEEDBACK_WIRE], ids=["setpoint", "feedback"])
def test_bit_flips_on_the_wire_never_yield_a_message(wire):
    """Flips in COBS code bytes shift zeros around or split the frame: still nothing gets through."""
    for bit in range((len(wire) - 1) * 8):
        flipped = bytearray(wire)
        flipped[bit // 8] ^= 1 << (bit % 8)
        decoder = FrameDecoder()
        assert decoder.feed(bytes(flipped)) == [], bit
        assert decoder.stats.dropped >= 1


@pytest.mark.parametrize("wire", [SETPOINT_WIRE, FEEDBACK_WIRE], ids=["setpoint", "feedback"])
def test_truncated_frames_are_dropped_as_short_or_corrupt(wire):
    decoder = FrameDecoder()
    for keep in range(1, len(wire) - 1):
        assert decoder.feed(wire[:keep] + b"\x00") == []
    s = decoder.stats
    assert s.dropped == len(wire) - 2 == s.short + s.bad_cobs + s.corrupt_crc
    assert s.bad_cobs > 0 and s.corrupt_crc > 0


def test_stats_names_match_drop_reasons():
    assert {r.value for r in DropReason} | {"ok"} == set(vars(FrameDecoder().stats))


# ---------------------------------------------------------------------------------------------- sequences
def test_sequence_tracker_basic_verdicts():
    t = SequenceTracker()
    assert t.observe(10).verdict is SeqVerdict.NEW                          # first is new, whatever it is
    assert t.observe(11).verdict is SeqVerdict.NEW
    d = t.observe(11)
    assert d.verdict is SeqVerdict.DUPLICATE and not d.accept
    d = t.observe(15)
    assert d.verdict is SeqVerdict.GAP and d.missing == 3 and d.accept
    d = t.observe(13)                                                        # a lost one arriving late
    assert d.verdict is SeqVerdict.OUT_OF_ORDER and not d.accept
    assert t.newest == 15
    assert vars(t.stats) == {"new": 2, "gaps": 1, "missing": 3, "duplicates": 1, "out_of_order": 1}


def test_sequence_tracker_wraparound():
    t = SequenceTracker()
    for seq in (65533, 65534, 65535, 0, 1):
        assert t.observe(seq).verdict is SeqVerdict.NEW
    t.reset()
    t.observe(65534)
    d = t.observe(2)                                                         # 65535, 0, 1 lost
    assert (d.verdict, d.missing) == (SeqVerdict.GAP, 3)
    assert t.observe(65535).verdict is SeqVerdict.OUT_OF_ORDER                # old, across the wrap
    assert t.observe(2).verdict is SeqVerdict.DUPLICATE


def test_sequence_tracker_half_window_boundary():
    t = SequenceTracker()
    t.observe(0)
    assert t.observe(32767).missing == 32766                                 # d = 32767: still ahead
    t.reset()
    t.observe(0)
    assert t.observe(32768).verdict is SeqVerdict.OUT_OF_ORDER               # d = 32768: behind
    with pytest.raises(ValueError):
        t.observe(65536)


def test_sequence_tracker_reset_starts_a_new_session():
    t = SequenceTracker()
    t.observe(500)
    t.reset()
    assert t.observe(3).verdict is SeqVerdict.NEW and t.stats.out_of_order == 0


@SEEDED
@given(st.integers(0, 0xFFFF), st.lists(st.integers(-40, 40), max_size=300))
def test_sequence_tracker_matches_an_unwrapped_model(start, steps):
    """Against unbounded integers: the u16 tracker must give the same verdicts over any wraps."""
    t = SequenceTracker()
    t.observe(start)
    newest, true = start, start
    for step in steps:
        true_seq = true + step
        d = t.observe(true_seq & 0xFFFF)
        if step == 0:
            assert d.verdict is SeqVerdict.DUPLICATE
        elif step < 0:
            assert d.verdict is SeqVerdict.OUT_OF_ORDER
        else:
            assert d.verdict is (SeqVerdict.NEW if step == 1 else SeqVerdict.GAP)
            assert d.missing == step - 1
            true = true_seq
            newest = true_seq & 0xFFFF
        assert t.newest == newest
