"""Tests for motionctl.ltc: the 80-bit word, exact biphase-mark timing, and the streaming reader under
reverse play, off-speed, drift, noise, DC and gain, plus WAV files.

Signals are synthetic (our own encoder), so every expectation is exact: word k of
``encode(start, n, rate)`` starts at sample ``round((w0 + k) * sample_rate / word_rate) - round(w0 * ...)``
(round half up), which :func:`word_starts` computes with fractions.
"""

from __future__ import annotations

import math
import struct
import time
import wave
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motionctl.errors import InputError, TimecodeError
from motionctl.ltc import (LtcDecoder, decode, encode, encode_words, frames_per_word, ltc_bits, ltc_rate,
                           ltc_word, parse_word, polarity_bit, read_wav, word_bits, word_parity_ok, write_wav)
from motionctl.timecode import FRAME_RATES, FrameRate, frame_to_label, label_to_frame, timecode_fields

SR = 48000
FAST = settings(derandomize=True, max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(derandomize=True, max_examples=8, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

ALL = list(FRAME_RATES)
LOW = [name for name, r in FRAME_RATES.items() if r.nominal <= 30]
HIGH = [name for name, r in FRAME_RATES.items() if r.nominal > 30]
SYNC_BITS = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1]      # bits 64..79 in sending order


def word_starts(start: int, count: int, rate: str, sr: int = SR) -> list[int]:
    """First sample of each word of encode(start, count, rate), plus the end of the stream."""
    fr = FrameRate.parse(rate)
    per = frames_per_word(fr)
    spw = Fraction(sr) / ltc_rate(fr).fps                      # samples per word, exact
    w0 = start // per

    def rnd(x: Fraction) -> int:
        return math.floor(x + Fraction(1, 2))
    return [rnd((w0 + i) * spw) - rnd(w0 * spw) for i in range(count // per + 1)]


def stretch(x: np.ndarray, speed: float) -> np.ndarray:
    """Play ``x`` at ``speed`` times normal (tape varispeed) by linear interpolation."""
    n = int((len(x) - 1) / speed)
    return np.interp(np.arange(n) * speed, np.arange(len(x)), x).astype(np.float32)


def with_parity(word: int, rate: str) -> int:
    return word if word_parity_ok(word) else word ^ (1 << polarity_bit(rate))


# ---------------------------------------------------------------------------------------- word layout
def test_word_layout_worked_example_25fps():
    # 01:02:03:04 at 25 fps, by hand (bit i has weight 2**i; BCD digits least significant bit first):
    #   frames units 4 = 0100b  -> bit 2           frames tens 0  -> bits 8-9 clear
    #   seconds units 3 = 0011b -> bits 16, 17     seconds tens 0 -> bits 24-26 clear
    #   minutes units 2 = 0010b -> bit 33          minutes tens 0
    #   hours units 1 = 0001b   -> bit 48          hours tens 0
    #   DF flag (10) and colour frame (11) clear; user bits 0; binary group flags 0.
    #   sync 0011 1111 1111 1101 in bits 64..79 (bit 64 first): bits 66-77 and 79 set = 13 ones.
    #   ones: 5 + 13 = 18 -> already an even count of ones (and so of zeros): polarity bit 59 stays 0.
    #   As an integer: sync field = 0xBFFC << 64 (the 16 bits reversed); each BCD digit sits in its own
    #   nibble because the user-bit groups fill the nibbles between them -> 0xBFFC_0001_0002_0003_0004.
    frame = label_to_frame("01:02:03:04", "25")
    word = ltc_word(frame, "25")
    assert word == 0xBFFC_0001_0002_0003_0004
    assert [i for i in range(80) if word >> i & 1][:5] == [2, 16, 17, 33, 48]
    assert list(word_bits(word)[64:]) == SYNC_BITS
    assert list(ltc_bits(frame, "25")) == list(word_bits(word))
    assert parse_word(word) == (1, 2, 3, 4, False, 0)
    assert parse_word(list(word_bits(word))) == (1, 2, 3, 4, False, 0)


def test_polarity_bit_is_59_at_25fps_and_27_otherwise():
    # 01:02:03:05: frames units 5 = 0101b adds bits 0 and 2 -> 6 data ones + 13 sync ones = 19, odd,
    # so the polarity-correction bit is set: bit 59 on 25-frame counting, bit 27 on 24/30-frame.
    w25 = ltc_word(label_to_frame("01:02:03:05", "25"), "25")
    assert w25 == 0xBFFC_0801_0002_0003_0005 and w25 >> 59 & 1 and not w25 >> 27 & 1
    w30 = ltc_word(label_to_frame("01:02:03:05", "30"), "30")
    assert w30 == 0xBFFC_0001_0002_0803_0005 and w30 >> 27 & 1 and not w30 >> 59 & 1
    assert w30 & ~(1 << 27) == w25 & ~(1 << 59)
    assert polarity_bit("25") == polarity_bit("50") == 59
    assert {polarity_bit(r) for r in ALL if FrameRate.parse(r).nominal not in (25, 50)} == {27}


def test_drop_frame_word_worked_example():
    # 00:01:00;03 at 29.97df is frame 1801 (1800 is 00:01:00;02: ;00 and ;01 are dropped).
    #   frames units 3 = 0011b -> bits 0, 1; DF flag -> bit 10; minutes units 1 -> bit 32.
    #   ones: 4 + 13 = 17, odd -> polarity bit 27 set.  Integer: 0xBFFC_0000_0001_0800_0403.
    frame = label_to_frame("00:01:00;03", "29.97df")
    assert frame == 1801
    word = ltc_word(frame, "29.97df")
    assert word == 0xBFFC_0000_0001_0800_0403
    assert word >> 10 & 1 and word >> 27 & 1
    assert parse_word(word) == (0, 1, 0, 3, True, 0)
    # The same label at 29.97 NDF has no DF flag (and an even count of ones: no polarity bit).
    assert ltc_word(frame + 2, "29.97") == 0xBFFC_0000_0001_0000_0003


def test_user_bits_and_colour_frame_layout():
    word = ltc_word(0, "24", user_bits=0x87654321, color_frame=True)
    groups = [(word >> (4 + 8 * k)) & 0xF for k in range(8)]
    assert groups == [1, 2, 3, 4, 5, 6, 7, 8]                 # group 1 is the lowest nibble
    assert word >> 11 & 1
    assert parse_word(word)[5] == 0x87654321
    with pytest.raises(TimecodeError):
        ltc_word(0, "24", user_bits=1 << 32)


@FAST
@given(st.sampled_from(ALL), st.integers(0, 2 * 24 * 3600 * 60), st.integers(0, 2**32 - 1), st.booleans())
def test_every_word_has_even_zeros_and_parses_back(rate, frame, user, colour):
    fr = FrameRate.parse(rate)
    word = ltc_word(frame, fr, user_bits=user, color_frame=colour)
    bits = word_bits(word)
    assert np.count_nonzero(bits == 0) % 2 == 0
    h, m, s, f = timecode_fields(frame // frames_per_word(fr), ltc_rate(fr))
    assert parse_word(word) == (h, m, s, f, fr.drop_frame, user)
    assert f < ltc_rate(fr).nominal <= 30


def test_high_rates_send_one_word_per_frame_pair():
    for high, low in (("48", "24"), ("50", "25"), ("59.94df", "29.97df"), ("59.94", "29.97"), ("60", "30")):
        assert ltc_rate(high) == FRAME_RATES[low] and frames_per_word(high) == 2
        for k in (0, 1, 1799, 1800, 17982, 123457):
            assert ltc_word(2 * k, high) == ltc_word(2 * k + 1, high) == ltc_word(k, low)
            assert timecode_fields(2 * k, high)[3] // 2 == timecode_fields(k, low)[3]


@pytest.mark.parametrize("field_bit", [0, 16, 32, 48])
@pytest.mark.parametrize("units", range(10, 16))
def test_parse_word_rejects_bad_bcd_units(field_bit, units):
    word = ltc_word(0, "25") | units << field_bit
    with pytest.raises(TimecodeError, match="bad BCD"):
        parse_word(word)


@pytest.mark.parametrize("label", ["00:00:60:00", "00:60:00:00", "24:00:00:00", "00:00:00:30"])
def test_parse_word_rejects_out_of_range_fields(label):
    h, m, s, f = (int(v) for v in label.split(":"))
    word = ltc_word(0, "30")
    for value, (units_at, tens_at) in zip((f, s, m, h), ((0, 8), (16, 24), (32, 40), (48, 56))):
        word |= (value % 10) << units_at | (value // 10) << tens_at
    with pytest.raises(TimecodeError):
        parse_word(word)


def test_parse_word_needs_the_sync_word_and_80_bits():
    with pytest.raises(TimecodeError, match="sync"):
        parse_word(ltc_word(0, "25") ^ (1 << 70))
    with pytest.raises(TimecodeError):
        parse_word([0, 1] * 20)
    with pytest.raises(TimecodeError):
        ltc_word(-1, "25")
    with pytest.raises(TimecodeError):
        ltc_word(1.0, "25")                                    # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- encoder timing
@pytest.mark.parametrize("rate", ["23.976", "25", "29.97df", "59.94df"])
def test_every_transition_is_at_its_exact_rational_sample(rate):
    fr = FrameRate.parse(rate)
    per = frames_per_word(fr)
    start, count = 1796 * per, 10 * per
    audio = encode(start, count, fr, rise_time=0)
    spb = Fraction(SR) / (80 * ltc_rate(fr).fps)               # samples per bit
    b0 = 80 * (start // per)

    def at(x: Fraction) -> int:
        return math.floor(x + Fraction(1, 2))
    bits = np.concatenate([word_bits(ltc_word(start + per * i, fr)) for i in range(count // per)])
    expected = []
    for k, bit in enumerate(bits):
        expected.append(at((b0 + k) * spb) - at(b0 * spb))
        if bit:
            expected.append(at((b0 + k + Fraction(1, 2)) * spb) - at(b0 * spb))
    level = audio > 0
    changes = list(np.flatnonzero(level[1:] != level[:-1]) + 1)
    assert level[0] and [0] + changes == expected               # every word starts on a rising edge
    assert audio.size == at((b0 + bits.size) * spb) - at(b0 * spb)
    assert audio.dtype == np.float32 and np.max(np.abs(audio)) == pytest.approx(0.5)


def test_chunks_concatenate_into_one_seamless_stream():
    for rate in ("23.976", "29.97df", "60"):
        whole = encode(0, 40, rate)
        parts = np.concatenate([encode(0, 10, rate), encode(10, 12, rate), encode(22, 18, rate)])
        assert np.array_equal(whole, parts)
        starts = word_starts(0, 40, rate)
        assert whole.size == starts[-1]


def test_encode_rejects_bad_arguments():
    with pytest.raises(TimecodeError, match="frame pair"):
        encode(1, 10, "60")
    with pytest.raises(TimecodeError, match="frame pair"):
        encode(0, 3, "50")
    for kwargs in ({"sample_rate": 4000}, {"amplitude": 0.0}, {"amplitude": 1.5}, {"rise_time": -1.0}):
        with pytest.raises(TimecodeError):
            encode(0, 2, "25", **kwargs)
    with pytest.raises(TimecodeError):
        encode(-1, 2, "25")
    with pytest.raises(TimecodeError):
        encode(0, 2, "31")
    assert encode(0, 0, "25").size == 0


# ---------------------------------------------------------------------------------------- round trips
def _check(frames, start: int, count: int, rate: str, *, offset: int = 0, tol: int = 1, reverse: bool = False,
           total: int | None = None, speed: float = 1.0):
    fr = FrameRate.parse(rate)
    per = frames_per_word(fr)
    expected = list(range(start, start + count, per))
    starts = word_starts(start, count, rate)
    if reverse:
        expected = expected[::-1]
    assert [f.frame for f in frames] == expected
    for f in frames:
        k = (f.frame - start) // per
        assert f.label == frame_to_label(f.frame, fr)
        assert f.fields == timecode_fields(f.frame, fr)
        assert f.drop_frame == fr.drop_frame and f.reverse == reverse and f.parity_ok
        want = offset + (total - starts[k + 1] if reverse else starts[k]) / speed
        assert abs(f.start_sample - want) <= tol, (f, want)


@pytest.mark.parametrize("rate", ALL)
def test_round_trip_at_every_rate(rate):
    fr = FrameRate.parse(rate)
    per = frames_per_word(fr)
    start = (1790 if fr.drop_frame else 17975) * per          # crosses a minute (and a DF drop)
    audio = encode(start, 50 * per, fr)
    _check(decode(audio, SR, fr), start, 50 * per, rate, tol=0)


@pytest.mark.parametrize("rate", ALL)
def test_reversed_audio_decodes_backwards(rate):
    fr = FrameRate.parse(rate)
    per = frames_per_word(fr)
    start = (1790 if fr.drop_frame else 86) * per
    audio = encode(start, 40 * per, fr)
    frames = decode(audio[::-1].copy(), SR, fr)
    _check(frames, start, 40 * per, rate, reverse=True, total=audio.size, tol=0)


@pytest.mark.parametrize("rate", LOW)
def test_rate_is_inferred_when_not_given(rate):
    start = 1790 if FrameRate.parse(rate).drop_frame else 86
    audio = encode(start, 90, rate)
    decoder = LtcDecoder(SR)
    frames = decoder.feed(audio) + decoder.flush()
    assert decoder.rate == FrameRate.parse(rate)
    _check(frames, start, 90, rate, tol=0)
    _check(decode(audio[::-1].copy(), SR), start, 90, rate, reverse=True, total=audio.size, tol=0)


@pytest.mark.parametrize("high", HIGH)
def test_high_rate_ltc_without_a_rate_reads_as_the_half_rate(high):
    # Frame-pair LTC is bit-identical to half-rate LTC: only the caller can say it is 50/60 fps.
    low = ltc_rate(high)
    frames = decode(encode(3580, 60, high), SR)
    assert [f.frame for f in frames] == list(range(1790, 1820))
    assert {f.label for f in frames} == {frame_to_label(f, low) for f in range(1790, 1820)}


@pytest.mark.parametrize("speed", [0.9, 0.95, 1.05, 1.1])
@pytest.mark.parametrize("rate", ["23.976", "25", "29.97df", "60"])
def test_off_speed_play_decodes(speed, rate):
    fr = FrameRate.parse(rate)
    per = frames_per_word(fr)
    start = 1790 * per
    audio = encode(start, 60 * per, fr)
    played = stretch(audio, speed)
    _check(decode(played, SR, fr), start, 60 * per, rate, tol=1, speed=speed)
    backwards = decode(played[::-1].copy(), SR, fr)
    assert [f.frame for f in backwards] == list(range(start, start + 60 * per, per))[::-1]
    if per == 1:                                              # and the rate is still inferred
        assert [f.frame for f in decode(played, SR)] == list(range(start, start + 60))


def test_speed_drifting_from_minus_to_plus_ten_percent_decodes():
    audio = encode(0, 250, "25")                              # 10 s
    n = int(audio.size * 1.01)                                 # mean speed ~1: covers the whole audio
    speed = np.linspace(0.9, 1.1, n)
    position = np.concatenate(([0.0], np.cumsum(speed[:-1])))
    position = position[position <= audio.size - 1]
    played = np.interp(position, np.arange(audio.size), audio)
    frames = decode(played, SR, "25")
    assert [f.frame for f in frames] == list(range(250))
    expected = np.searchsorted(position, np.array(word_starts(0, 250, "25")[:-1]) - 0.5)
    assert np.max(np.abs(np.array([f.start_sample for f in frames]) - expected)) <= 2


@SLOW
@given(st.integers(0, 2**32 - 1))
def test_noise_dc_offset_and_gain_decode(seed):
    rng = np.random.default_rng(seed)
    amplitude = rng.uniform(0.02, 0.6)
    dc = rng.uniform(-0.35, 0.35)
    audio = encode(500, 100, "29.97df", amplitude=amplitude)
    noisy = audio + dc + rng.normal(0.0, amplitude / 10, audio.size)   # square-wave rms / 10: 20 dB SNR
    decoder = LtcDecoder(SR, "29.97df")
    frames = decoder.feed(noisy.astype(np.float32)) + decoder.flush()
    _check(frames, 500, 100, "29.97df", tol=1)
    assert not decoder.errors


@FAST
@given(st.integers(0, 30000), st.booleans(), st.lists(st.integers(1, 6000), min_size=1, max_size=30))
def test_stream_offsets_and_arbitrary_chunking(lead, noisy_lead, chunk_sizes):
    audio = encode(240, 30, "24")
    rng = np.random.default_rng(lead)
    pad = rng.normal(0, 0.002, lead) if noisy_lead else np.zeros(lead)
    stream = np.concatenate((pad, audio, np.zeros(500)))
    decoder = LtcDecoder(SR, "24")
    frames, at, i = [], 0, 0
    while at < stream.size:
        size = chunk_sizes[i % len(chunk_sizes)]
        frames += decoder.feed(stream[at:at + size])
        at, i = at + size, i + 1
    frames += decoder.flush()
    assert decoder.samples_fed == stream.size
    # After a noise lead-in the first word's first edge may be taken from the noise: a bit period.
    _check(frames[:1], 240, 1, "24", offset=lead, tol=SR // (80 * 24))
    _check(frames[1:], 241, 29, "24", offset=lead + word_starts(240, 2, "24")[1], tol=1)


def test_frames_come_out_while_streaming():
    audio = encode(0, 20, "25")
    decoder = LtcDecoder(SR, "25")
    seen = []
    for k in range(20):
        seen.append([f.frame for f in decoder.feed(audio[k * 1920:(k + 1) * 1920])])
    assert seen[0] == [] and all(seen[k] == [k - 1] for k in range(1, 20))   # one word of latency at most
    assert [f.frame for f in decoder.flush()] == [19]


def test_ten_minutes_at_25fps_every_frame_without_drift():
    count = 25 * 600
    t0 = time.perf_counter()
    audio = encode(0, count, "25")
    decoder = LtcDecoder(SR, "25")
    frames = []
    for at in range(0, audio.size, SR):
        frames += decoder.feed(audio[at:at + SR])
    frames += decoder.flush()
    assert [f.frame for f in frames] == list(range(count))
    drift = [f.start_sample - round(f.frame * SR / 25) for f in frames]
    assert max(map(abs, drift)) <= 1
    assert frames[-1].label == "00:09:59:24" and not decoder.errors
    assert time.perf_counter() - t0 < 30


# ---------------------------------------------------------------------------------------- error handling
def test_bad_words_are_skipped_and_counted():
    rate = "29.97df"
    frames = list(range(1795, 1806))                          # 00:00:59;25 .. 00:01:00;05
    words = [ltc_word(f, rate) for f in frames]
    words[2] = with_parity(words[2] | 0xF, rate)                # frame units 15: bad BCD
    words[5] = with_parity(words[5] & ~0b10, rate)              # 00:01:00;02 -> ;00, a dropped label
    words[7] ^= 1 << 27                                         # wrong polarity bit: reported, counted
    decoder = LtcDecoder(SR, rate)
    got = decoder.feed(encode_words(words, rate, first_word=1795)) + decoder.flush()
    assert [f.frame for f in got] == [f for i, f in enumerate(frames) if i not in (2, 5)]
    assert [f.parity_ok for f in got].count(False) == 1
    assert decoder.errors["bcd"] == 1 and decoder.errors["label"] == 1 and decoder.errors["parity"] == 1
    assert decoder.frames_decoded == len(frames) - 2


def test_drop_frame_ltc_read_at_a_non_drop_rate_is_counted_not_reported():
    decoder = LtcDecoder(SR, "29.97")
    assert decoder.feed(encode(0, 20, "29.97df")) + decoder.flush() == []
    assert decoder.errors["rate_mismatch"] == 20


def test_dropout_loses_only_the_words_it_hits():
    audio = encode(0, 60, "30")
    hole = slice(20 * 1600 + 700, 20 * 1600 + 700 + 2400)    # 50 ms of silence inside word 20
    damaged = audio.copy()
    damaged[hole] = 0.0
    decoder = LtcDecoder(SR, "30")
    got = [f.frame for f in decoder.feed(damaged) + decoder.flush()]
    assert set(range(60)) - set(got) <= {20, 21, 22} and got == sorted(got) and len(got) >= 57
    assert decoder.errors["gap"] >= 1


def test_noise_and_silence_give_no_frames():
    rng = np.random.default_rng(7)
    decoder = LtcDecoder(SR)
    assert decoder.feed(rng.normal(0, 0.3, 5 * SR)) == []
    assert decoder.feed(np.zeros(SR)) + decoder.feed(np.zeros(0)) + decoder.flush() == []
    odd = [np.linspace(-1, 1, 3000), np.r_[np.zeros(500), np.ones(500)], np.full(700, np.nan), [0.3] * 9]
    for block in odd:
        assert LtcDecoder(SR).feed(np.asarray(block)) == []
    assert decoder.rate is None
    with pytest.raises(TimecodeError):
        decoder.feed(np.zeros((10, 2)))
    with pytest.raises(TimecodeError):
        LtcDecoder(1000)


# ---------------------------------------------------------------------------------------- WAV files
def test_wav_write_read_round_trip_decodes(tmp_path):
    audio = encode(86400 * 25 - 30, 60, "25", sample_rate=44100)   # crosses midnight: labels wrap
    path = tmp_path / "ltc.wav"
    write_wav(path, audio, 44100)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 44100)
    samples, rate = read_wav(path)
    assert rate == 44100 and samples.dtype == np.float32 and samples.size == audio.size
    assert np.max(np.abs(samples - audio)) < 1 / 32767
    frames = decode(samples, rate, "25")
    assert [f.label for f in frames[28:32]] == ["23:59:59:23", "23:59:59:24", "00:00:00:00", "00:00:00:01"]


def _write(path, width: int, channels: int, raw: bytes, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(raw)


def test_read_wav_sample_widths_and_channels(tmp_path):
    _write(tmp_path / "u8.wav", 1, 1, bytes([0, 128, 255]))
    assert read_wav(tmp_path / "u8.wav")[0].tolist() == [-1.0, 0.0, 127 / 128]
    s24 = [-(1 << 23), 0, (1 << 23) - 1, 1]
    _write(tmp_path / "s24.wav", 3, 1, b"".join(v.to_bytes(3, "little", signed=True) for v in s24))
    assert np.allclose(read_wav(tmp_path / "s24.wav")[0], np.array(s24) / 2**23, atol=1e-7)
    _write(tmp_path / "s32.wav", 4, 1, struct.pack("<2i", -(1 << 31), (1 << 30)))
    assert read_wav(tmp_path / "s32.wav")[0].tolist() == [-1.0, 0.5]
    _write(tmp_path / "st.wav", 2, 2, struct.pack("<4h", 100, -16384, 200, 16384), rate=22050)
    left, rate = read_wav(tmp_path / "st.wav")
    right, _ = read_wav(tmp_path / "st.wav", channel=1)
    assert rate == 22050 and left.tolist() == [100 / 32768, 200 / 32768] and right.tolist() == [-0.5, 0.5]
    with pytest.raises(InputError, match="channel 2 does not exist"):
        read_wav(tmp_path / "st.wav", channel=2)


def test_24_bit_stereo_ltc_file_decodes_from_the_first_channel(tmp_path):
    audio = encode(0, 30, "23.976")
    ints = np.round(audio * (2**23 - 1)).astype(np.int64)
    frames = np.stack((ints, np.zeros_like(ints)), axis=1).ravel()
    raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in frames)
    _write(tmp_path / "ltc24.wav", 3, 2, raw, rate=SR)
    samples, rate = read_wav(tmp_path / "ltc24.wav")
    assert [f.frame for f in decode(samples, rate)] == list(range(30))


def _float_wav(path) -> None:
    data = struct.pack("<4f", 0.0, 0.5, -0.5, 0.0)
    fmt = struct.pack("<HHIIHH", 3, 1, SR, SR * 4, 4, 32)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
                     + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)


@pytest.mark.parametrize("kind", ["text", "empty", "missing", "float", "truncated", "directory"])
def test_bad_wav_input_is_one_input_error_line_naming_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    if kind == "text":
        path.write_text("not audio at all\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "float":
        _float_wav(path)
    elif kind == "truncated":
        path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt ")
    elif kind == "directory":
        path.mkdir()
    with pytest.raises(InputError) as info:
        read_wav(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert not isinstance(info.value, TimecodeError)
    if kind == "float":
        assert "PCM" in message


def test_write_wav_rejects_bad_input(tmp_path):
    with pytest.raises(InputError):
        write_wav(tmp_path / "x.wav", np.zeros((4, 2)), SR)
    with pytest.raises(InputError):
        write_wav(tmp_path / "x.wav", np.zeros(4), 0)
    with pytest.raises(InputError, match="cannot write"):
        write_wav(tmp_path / "missing-dir" / "x.wav", np.zeros(4), SR)
