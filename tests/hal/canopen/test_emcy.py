"""EMCY frames: byte layout, round trip, plain-word texts, class fallback, error register."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motionctl.errors import InputError
from motionctl.hal.canopen.emcy import (
    CODES,
    Emcy,
    ErrorRegister,
    decode_emcy,
    describe_error_register,
    emcy_text,
    encode_emcy,
)

SETTINGS = settings(derandomize=True, database=None, max_examples=300, deadline=None)


def test_layout_is_cia301() -> None:
    # u16 code little-endian, u8 error register, 5 vendor bytes.
    assert encode_emcy(0x8611, 0x21, b"\x01\x02") == bytes([0x11, 0x86, 0x21, 0x01, 0x02, 0, 0, 0])
    emcy = decode_emcy(bytes([0x30, 0x81, 0x11, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE]))
    assert (emcy.code, emcy.register, emcy.vendor) == (0x8130, 0x11, b"\xAA\xBB\xCC\xDD\xEE")


@SETTINGS
@given(code=st.integers(0, 0xFFFF), register=st.integers(0, 0xFF), vendor=st.binary(max_size=5))
def test_round_trip(code: int, register: int, vendor: bytes) -> None:
    data = encode_emcy(code, register, vendor)
    assert len(data) == 8
    emcy = decode_emcy(data)
    assert emcy == Emcy(code, register, vendor.ljust(5, b"\0"), emcy_text(code))
    assert emcy.text                                  # every code gets a sentence
    assert emcy.is_reset == (code & 0xFF00 == 0)


# Code -> words the sentence must contain, for the codes an operator will meet on a camera rig.
PLAIN_WORDS = {
    0x0000: "no error",
    0x1000: "generic error",
    0x2310: "over-current",
    0x3210: "dc link over-voltage",
    0x3220: "dc link under-voltage",
    0x4210: "over-temperature",
    0x5530: "eeprom",
    0x6320: "parameter",
    0x7300: "sensor",
    0x7305: "incremental sensor 1",
    0x8110: "overrun",
    0x8120: "error passive",
    0x8130: "heartbeat",
    0x8140: "bus off",
    0x8611: "following error",
    0x8612: "limit",
    0x9000: "external error",
    0xFF00: "manufacturer-specific",
}


@pytest.mark.parametrize("code, words", sorted(PLAIN_WORDS.items()))
def test_plain_words(code: int, words: str) -> None:
    text = decode_emcy(encode_emcy(code, 0)).text
    assert words in text.lower()
    assert text.endswith(".")
    assert text[0].isupper()


def test_following_error_names_what_to_check() -> None:
    text = emcy_text(0x8611)
    assert "0x6065" in text and "0x6066" in text and "collision" in text


@pytest.mark.parametrize("code, words", [
    (0x2399, "motor side"),            # unknown 23xx -> current, motor side
    (0x2F00, "current fault"),         # unknown 2xxx -> current
    (0x3299, "dc link"),
    (0x4999, "temperature"),
    (0x5FFF, "hardware"),
    (0x6999, "software"),
    (0x7399, "sensor"),
    (0x7999, "additional module"),
    (0x8699, "positioning controller"),
    (0x8F00, "monitoring"),
    (0x9001, "external error"),
    (0xFF42, "manufacturer-specific"),
    (0x0042, "no error"),              # 00xx is error reset in CiA 301
])
def test_unknown_specific_codes_fall_back_to_their_class(code: int, words: str) -> None:
    assert code not in CODES
    text = emcy_text(code)
    assert words in text.lower()
    if code & 0xFF00:
        assert f"0x{code:04X}" in text and "not in the CiA tables" in text


def test_reserved_classes() -> None:
    for code in (0xA000, 0xE123, 0xF100):
        assert "reserved" in emcy_text(code).lower()


def test_every_listed_code_is_a_sentence_of_its_own_class() -> None:
    for code, text in CODES.items():
        assert text.endswith(".") and text[0].isupper(), hex(code)
        assert "not in the CiA tables" not in emcy_text(code)


def test_error_register_words() -> None:
    assert [int(b) for b in ErrorRegister] == [1, 2, 4, 8, 16, 32, 64, 128]
    assert describe_error_register(0x00) == []
    assert describe_error_register(0x01) == ["generic error"]
    assert describe_error_register(0x11) == ["generic error", "communication"]
    assert describe_error_register(0x21) == ["generic error", "drive profile (CiA 402)"]
    assert describe_error_register(0x8E) == ["current", "voltage", "temperature", "manufacturer specific"]


def test_describe_line() -> None:
    line = decode_emcy(encode_emcy(0x8611, 0x21, b"\x00\x00\x10")).describe()
    assert line.startswith("EMCY 0x8611: Following error:")
    assert "Error register 0x21: generic error, drive profile (CiA 402)." in line
    assert line.endswith("Vendor data 00 00 10 00 00.")
    assert "Vendor" not in decode_emcy(encode_emcy(0x0000, 0)).describe()


def test_short_frames_and_bad_input() -> None:
    emcy = decode_emcy(b"\x10\x23\x02")
    assert (emcy.code, emcy.register, emcy.vendor) == (0x2310, 0x02, b"")
    for bad in (b"", b"\x00\x10", bytes(9)):
        with pytest.raises(InputError, match="EMCY frame"):
            decode_emcy(bad)
    with pytest.raises(InputError):
        encode_emcy(0x10000, 0)
    with pytest.raises(InputError):
        encode_emcy(0x1000, 256)
    with pytest.raises(InputError, match="at most 5"):
        encode_emcy(0x1000, 1, bytes(6))
