"""OpenTrackIO: samples valid against the official schema after a real UDP round trip on 127.0.0.1
(ephemeral ports, never multicast), the OTrk header and Fletcher-16 bytes, segmentation, and the camera
transform equal to FK of the joints."""

from __future__ import annotations

import json
import math
import random
import socket

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from motionctl.errors import ProtocolError
from motionctl.kinematics import Kinematics
from motionctl.rotations import homogeneous, ptr_to_matrix, rotation_angle
from motionctl.spec import Stage
from motionctl.timecode import Timecode
from motionctl.vcam.opentrackio import (PROTOCOL_VERSION, build_sample, decode_udp, encode_udp, fletcher16,
                                        multicast_group, new_source_id, parse_datagram)
from motionctl.vcam.sender import VcamSender, camera_pose_from_joints
from tests.conftest import OPENTRACKIO, udp_receiver

REFERENCE = OPENTRACKIO
EXAMPLES = ("recommended_dynamic_example.json", "complete_dynamic_example.json",
            "complete_static_example.json")
SOURCE = "urn:uuid:0b0e6d1c-4a52-4f3e-9a51-6a3f1f3b9c11"
T0 = 1_718_806_554_500_000_000          # ns since the epoch


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    path = REFERENCE / "schema.json"
    assert path.is_file(), f"the OpenTrackIO schema is expected at {path}"
    schema = json.loads(path.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _assert_valid(validator: Draft202012Validator, sample: dict) -> None:
    errors = sorted(validator.iter_errors(sample), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def _receive_sample(rx: socket.socket) -> list[bytes]:
    """Datagrams up to and including the one with the last-segment flag."""
    datagrams = []
    while True:
        data, source = rx.recvfrom(65535)
        assert source[0] == "127.0.0.1"
        datagrams.append(data)
        if int.from_bytes(data[12:14], "big") & 0x8000:
            return datagrams


def _round_trip(sample: dict, sequence: int = 1, **kwargs) -> dict:
    """Send the sample's datagrams over loopback UDP, receive them, reassemble."""
    with udp_receiver(2.0) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.bind(("127.0.0.1", 0))
        datagrams = encode_udp(sample, sequence, **kwargs)
        for datagram in datagrams:
            tx.sendto(datagram, rx.getsockname())
        received = _receive_sample(rx)
    assert received == datagrams
    return decode_udp(received)


def _sample(stage, rig=None, **overrides) -> dict:
    args = dict(timecode=Timecode.parse("01:02:03:04", "23.976"), sequence=0, source_id=SOURCE,
                timestamp_ns=T0)
    args.update(overrides)
    pose = args.pop("pose", homogeneous(ptr_to_matrix(0.3, -0.1, 0.05), [1.0, 2.0, 1.5]))
    lens = args.pop("lens", {"focus": 3.0, "iris": 2.8, "zoom": 35.0})
    return build_sample(pose, lens, rig, stage, **args)


# -- the reference material ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", EXAMPLES)
def test_official_examples_validate(validator, name):
    _assert_valid(validator, json.loads((REFERENCE / name).read_text()))


def test_protocol_version_is_the_schema_examples_version():
    for name in EXAMPLES:
        example = json.loads((REFERENCE / name).read_text())
        if "protocol" in example:
            assert example["protocol"] == {"name": "OpenTrackIO", "version": list(PROTOCOL_VERSION)}


def test_the_validator_rejects_a_broken_sample(validator, stage):
    sample = _sample(stage)
    sample["transforms"][0]["rotation"]["yaw"] = 1.0
    assert list(validator.iter_errors(sample))


# -- samples after a real UDP round trip -----------------------------------------------------------------

def test_sample_is_valid_after_udp_round_trip(validator, ur_rig, stage):
    sample = _sample(stage, ur_rig, slate="A101_A_4", recording=True, notes="motionctl test")
    received = _round_trip(sample)
    assert received == sample
    _assert_valid(validator, received)
    assert received["protocol"] == {"name": "OpenTrackIO", "version": [0, 9, 3]}
    assert received["sourceId"] == SOURCE and received["sourceNumber"] == 1
    assert received["sampleId"].startswith("urn:uuid:") and received["sampleId"] != SOURCE
    timing = received["timing"]
    assert timing["mode"] == "internal"
    assert timing["sampleRate"] == {"num": 24000, "denom": 1001}
    assert timing["sequenceNumber"] == 0
    assert timing["timecode"] == {"hours": 1, "minutes": 2, "seconds": 3, "frames": 4,
                                  "frameRate": {"num": 24000, "denom": 1001}, "dropFrame": False}
    assert timing["sampleTimestamp"] == {"seconds": 1_718_806_554, "nanoseconds": 500_000_000}
    assert received["tracker"] == {"status": "OK", "recording": True, "slate": "A101_A_4",
                                   "notes": "motionctl test"}
    assert [t["id"] for t in received["transforms"]] == ["Camera"]


@pytest.mark.parametrize("rate, label", [("23.976", "00:59:59:23"), ("25", "10:00:00:00"),
                                         ("29.97df", "00:01:00;02"), ("59.94df", "23:59:59;59"),
                                         ("60", "12:34:56:59")])
@pytest.mark.parametrize("mode", ["internal", "external"])
def test_timecode_and_modes_validate(validator, stage, rate, label, mode):
    tc = Timecode.parse(label, rate)
    timestamp = T0 if mode == "internal" else None
    received = _round_trip(_sample(stage, timecode=tc, mode=mode, timestamp_ns=timestamp, sequence=70000),
                           sequence=70000)
    _assert_valid(validator, received)
    hours, minutes, seconds, frames = tc.fields
    assert received["timing"]["timecode"] == {
        "hours": hours, "minutes": minutes, "seconds": seconds, "frames": frames,
        "frameRate": {"num": tc.rate.num, "denom": tc.rate.den}, "dropFrame": tc.rate.drop_frame}
    assert received["timing"]["sampleRate"] == {"num": tc.rate.num, "denom": tc.rate.den}
    assert received["timing"]["mode"] == mode
    assert ("sampleTimestamp" in received["timing"]) == (mode == "internal")


def test_drop_frame_timecode_fields():
    sample = build_sample(np.eye(4), None, None, _identity_stage(), timecode=Timecode(1800, "29.97df"),
                          sequence=5, source_id=SOURCE, timestamp_ns=0)
    assert sample["timing"]["timecode"] == {"hours": 0, "minutes": 1, "seconds": 0, "frames": 2,
                                            "frameRate": {"num": 30000, "denom": 1001}, "dropFrame": True}
    assert "lens" not in sample


def _identity_stage() -> Stage:
    return Stage("flat", "flat", "<test>", (), np.eye(4), 1.0)


def test_lens_block(validator, ur_rig, stage):
    axes = {a.name: a for a in ur_rig.lens}
    lens = _round_trip(_sample(stage, ur_rig, lens={"focus": 5.0, "iris": 4.0, "zoom": 47.0}))["lens"]
    # Schema directions: focus 0 = infinity .. 1 = closest (the rig calibration grows with distance).
    assert lens["encoders"]["focus"] == pytest.approx(1.0 - float(axes["focus"].encoder(5.0)))
    assert lens["encoders"]["focus"] == pytest.approx(1.0 - 0.82)
    assert lens["encoders"]["iris"] == pytest.approx(0.375)         # 0 = open .. 1 = closed
    assert lens["encoders"]["zoom"] == pytest.approx(0.5)           # 0 = wide .. 1 = tele
    assert (lens["fStop"], lens["pinholeFocalLength"], lens["focusDistance"]) == (4.0, 47.0, 5.0)
    no_rig = _round_trip(_sample(stage, None, lens={"zoom": 35.0}))
    _assert_valid(validator, no_rig)
    assert no_rig["lens"] == {"pinholeFocalLength": 35.0}
    only_iris = _round_trip(_sample(stage, ur_rig, lens={"iris": 1.4}))
    _assert_valid(validator, only_iris)
    assert only_iris["lens"] == {"encoders": {"iris": 0.0}, "fStop": 1.4}
    assert "lens" not in _sample(stage, ur_rig, lens={})


def test_transform_is_the_engine_world_pose(stage):
    """LED volume: stage origin at (12, -3.5, 0) m in the engine, turned 90 deg (counter-clockwise)."""
    sample = _sample(stage, pose=np.eye(4), lens=None)
    transform = sample["transforms"][0]
    assert transform["translation"] == pytest.approx({"x": 12.0, "y": -3.5, "z": 0.0})
    assert transform["rotation"] == pytest.approx({"pan": 90.0, "tilt": 0.0, "roll": 0.0})
    pose = homogeneous(ptr_to_matrix(math.radians(10.0), math.radians(20.0), math.radians(-5.0)), [1, 2, 3])
    flat = _sample(_identity_stage(), pose=pose, lens=None)["transforms"][0]
    assert flat["rotation"] == pytest.approx({"pan": 10.0, "tilt": 20.0, "roll": -5.0})
    assert flat["translation"] == pytest.approx({"x": 1.0, "y": 2.0, "z": 3.0})


@pytest.mark.parametrize("overrides, words", [
    ({"mode": "internal", "timestamp_ns": None}, "needs a sampleTimestamp"),
    ({"mode": "genlock"}, 'must be "internal" or "external"'),
    ({"source_id": "cd3713e1-cc63-4d7e-83d7-c984a6395d5f"}, "must be a urn:uuid"),
    ({"source_id": "urn:uuid:not-a-uuid"}, "is not a UUID URN"),
    ({"slate": "  "}, "slate must be non-blank"),
    ({"sequence": -1}, "sequence must be a non-negative integer"),
    ({"timestamp_ns": -5}, "timestamp_ns must be a non-negative integer"),
    ({"pose": np.eye(3)}, "must be a 4x4"),
    ({"pose": np.full((4, 4), np.inf)}, "non-finite"),
    ({"lens": {"iris": float("nan")}}, "lens iris must be a finite value"),
])
def test_bad_arguments_are_refused(stage, overrides, words):
    with pytest.raises(ValueError, match=words):
        _sample(stage, **overrides)


def test_ids_are_canonical_and_sequence_wraps(validator, stage):
    upper = "urn:uuid:0B0E6D1C-4A52-4F3E-9A51-6A3F1F3B9C11"
    sample = _sample(stage, source_id=upper, sequence=(1 << 32) + 7)
    assert sample["sourceId"] == SOURCE
    assert sample["timing"]["sequenceNumber"] == 7
    _assert_valid(validator, sample)
    assert new_source_id() != new_source_id()
    assert multicast_group(7) == "239.135.1.7"


# -- header and checksum bytes ---------------------------------------------------------------------------

def test_header_and_fletcher_golden_bytes():
    """Payload ``{}`` (7B 7D), sequence 1, JSON, one segment.  Header before the checksum:

        4F 54 72 6B  "OTrk"        00  reserved      01  JSON        00 01  sequence 1
        00 00 00 00  offset 0      80 02  last segment | length 2

    Fletcher-16 with sums modulo 256 over those 14 bytes then 7B 7D (s1 += byte; s2 += s1):

        byte  4F  54  72  6B  00  01  00  01  00  00  00  00  80  02  7B  7D
        s1    4F  A3  15  80  80  81  81  82  82  82  82  82  02  04  7F  FC
        s2    4F  F2  07  87  07  88  09  8B  0D  8F  11  93  95  99  18  14

    checksum = s2 << 8 | s1 = 0x14FC, sent big-endian.
    """
    (datagram,) = encode_udp({}, 1)
    assert datagram == bytes.fromhex("4F54726B 00 01 0001 00000000 8002 14FC 7B7D")
    assert fletcher16(datagram[:14] + datagram[16:]) == 0x14FC
    # The textbook modulo-255 sums give 0x2DFE for the same bytes (s1 = 0xFE, s2 = 0x2D).
    assert fletcher16(datagram[:14] + datagram[16:], 255) == 0x2DFE
    (textbook,) = encode_udp({}, 1, checksum_modulo=255)
    assert textbook[14:16] == b"\x2D\xFE"
    assert decode_udp([textbook], checksum_modulo=255) == {}
    with pytest.raises(ProtocolError, match="checksum"):
        decode_udp([textbook])


def test_header_fields_of_a_segment():
    datagrams = encode_udp({"custom": list(range(400))}, 0x12345, max_payload=500)
    assert len(datagrams) > 1
    for index, datagram in enumerate(datagrams):
        segment = parse_datagram(datagram)
        assert segment.sequence == 0x2345                          # u16, the same in every segment
        assert segment.offset == 500 * index
        assert segment.last == (index == len(datagrams) - 1)
        assert segment.encoding == 0x01
        assert datagram[4] == 0                                   # reserved


# -- segmentation ----------------------------------------------------------------------------------------

def test_large_payload_is_segmented_and_round_trips():
    big = {"custom": list(range(3000)), "note": "x" * 5000}
    payload_size = len(json.dumps(big, separators=(",", ":")))
    datagrams = encode_udp(big, 9)
    assert len(datagrams) == -(-payload_size // 1400) > 10
    assert all(len(d) <= 16 + 1400 for d in datagrams)
    assert _round_trip(big, 9) == big
    assert _round_trip(big, 9, max_payload=100) == big
    shuffled = datagrams[:]
    random.Random(3).shuffle(shuffled)
    assert decode_udp(shuffled) == big                            # order does not matter


def test_reassembly_errors_are_protocol_errors():
    datagrams = encode_udp({"custom": list(range(1000))}, 4, max_payload=300)
    other = encode_udp({"custom": list(range(1000))}, 5, max_payload=300)
    corrupt = bytearray(datagrams[1])
    corrupt[40] ^= 0x01
    cases = {
        "missing bytes": datagrams[:1] + datagrams[2:],
        "overlapping": datagrams + datagrams[1:2],
        "different sequence numbers": datagrams[:2] + other[2:],
        "exactly one last segment": datagrams[:-1],
        "checksum": datagrams[:1] + [bytes(corrupt)] + datagrams[2:],
        "no OpenTrackIO datagrams": [],
        "not b'OTrk'": [b"OTrx" + datagrams[0][4:]],
        "shorter than its 16-byte header": [datagrams[0][:10]],
        "announces 300 payload bytes": [datagrams[0][:-1]],
    }
    for words, broken in cases.items():
        with pytest.raises(ProtocolError, match=words):
            decode_udp(broken)


def test_bad_payload_and_encoding_bytes_are_protocol_errors():
    def datagram(encoding: int, payload: bytes) -> bytes:
        header = b"OTrk" + bytes((0, encoding)) + (1).to_bytes(2, "big") + bytes(4) + \
            (0x8000 | len(payload)).to_bytes(2, "big")
        return header + fletcher16(header + payload).to_bytes(2, "big") + payload

    assert decode_udp([datagram(1, b'{"a":1}')]) == {"a": 1}
    with pytest.raises(ProtocolError, match="does not decode"):
        decode_udp([datagram(1, b'{"a":')])
    with pytest.raises(ProtocolError, match="not an object"):
        decode_udp([datagram(1, b"[1,2]")])
    with pytest.raises(ProtocolError, match="encoding 0x07"):
        decode_udp([datagram(7, b"{}")])
    with pytest.raises(ValueError, match="encoding must be"):
        encode_udp({}, 1, encoding="xml")
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        encode_udp({"x": float("nan")}, 1)
    with pytest.raises(ValueError, match="max_payload"):
        encode_udp({}, 1, max_payload=0x8000)


# -- the stream is FK of the joints ----------------------------------------------------------------------

def test_stream_equals_fk_of_random_joint_vectors(validator, ur_rig, stage):
    kin = Kinematics(ur_rig)
    rng = np.random.default_rng(11)
    tc = Timecode.parse("10:00:00:00", "24")
    with udp_receiver(2.0) as rx, VcamSender(otrk=rx.getsockname()[1], source_number=3) as sender:
        for n in range(40):
            q = rng.uniform(ur_rig.lower, ur_rig.upper)
            pose = camera_pose_from_joints(kin, q)
            assert sender.send(pose, {"focus": 2.0, "iris": 2.8, "zoom": 50.0}, tc + n, n, ur_rig, stage,
                               T0 + n * 41_666_667)
            sample = decode_udp(_receive_sample(rx))
            _assert_valid(validator, sample)
            assert sample["timing"]["sequenceNumber"] == n and sample["sourceNumber"] == 3
            world = stage.engine_from_stage @ kin.camera(q)
            transform = sample["transforms"][0]
            t = transform["translation"]
            np.testing.assert_allclose([t["x"], t["y"], t["z"]], world[:3, 3], rtol=0, atol=1e-12)
            r = transform["rotation"]
            rotation = ptr_to_matrix(*(math.radians(r[k]) for k in ("pan", "tilt", "roll")))
            # JSON carries doubles exactly; what is left is degree <-> radian rounding.
            assert rotation_angle(rotation, world[:3, :3]) < 1e-9
        assert sender.stats.otrk_samples_sent == sender.stats.otrk_datagrams_sent == 40


def test_sender_source_id_is_stable_and_sample_ids_are_fresh(validator, ur_rig, stage):
    with udp_receiver(2.0) as rx, VcamSender(otrk=rx.getsockname()[1], max_payload=200) as sender:
        samples, counts = [], []
        for n in range(3):
            assert sender.send(np.eye(4), {"zoom": 35.0}, Timecode(n, "25"), 100 + n, ur_rig, stage)
            datagrams = _receive_sample(rx)
            counts.append(len(datagrams))
            assert {parse_datagram(d).sequence for d in datagrams} == {100 + n}
            samples.append(decode_udp(datagrams))
        for sample in samples:
            _assert_valid(validator, sample)
        assert {s["sourceId"] for s in samples} == {sender.source_id}
        assert len({s["sampleId"] for s in samples}) == 3
        assert min(counts) > 1                                     # 200-byte segments: several per sample
        assert sender.stats.otrk_datagrams_sent == sum(counts)
        assert sender.stats.otrk_samples_sent == 3
