"""FreeD D1: the PROTOCOLS.md worked example byte for byte, round trips, sign conventions, checksums,
real UDP on 127.0.0.1 (ephemeral ports, never multicast), and the sender's safety rules."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motionctl.errors import ProtocolError
from motionctl.kinematics import Kinematics
from motionctl.rotations import homogeneous, ptr_to_matrix, rotation_angle
from motionctl.timecode import Timecode
from motionctl.vcam.freed import (D1_LENGTH, FreedPose, FreedRangeError, decode_d1, encode_d1,
                                  engine_pose_from_freed, freed_checksum, freed_from_pose)
from motionctl.vcam.sender import VcamSender, camera_pose_from_joints
from tests.conftest import udp_receiver

SETTINGS = settings(derandomize=True, database=None, max_examples=300, deadline=None)

# PROTOCOLS.md section 2: cam 1, pan 10.5, tilt -3.25, roll 0, x 1234.5 mm, y -200 mm, z 1500 mm,
# zoom 1000, focus 2000.
WORKED = FreedPose(camera_id=1, pan_deg=10.5, tilt_deg=-3.25, roll_deg=0.0, x_mm=1234.5, y_mm=-200.0,
                   z_mm=1500.0, zoom=1000, focus=2000)
WORKED_BYTES = bytes.fromhex(
    "D1 01 05 40 00 FE 60 00 00 00 00 01 34 A0 FF CE 00 01 77 00 00 03 E8 00 07 D0 00 00 EF")

ANGLE_LSB = 1.0 / 32768.0      # degrees
POSITION_LSB = 1.0 / 64.0      # millimetres


def _deg(pan=0.0, tilt=0.0, roll=0.0):
    return ptr_to_matrix(math.radians(pan), math.radians(tilt), math.radians(roll))


@pytest.fixture()
def flat_stage(stage):
    """The LED volume with an identity stage -> engine transform: FreeD values are stage values."""
    return dataclasses.replace(stage, engine_from_stage=np.eye(4))


# -- wire format -----------------------------------------------------------------------------------------

def test_worked_example_byte_for_byte():
    assert encode_d1(WORKED) == WORKED_BYTES
    assert len(WORKED_BYTES) == D1_LENGTH
    assert sum(WORKED_BYTES) % 256 == 0x40


def test_worked_example_decodes_exactly():
    assert decode_d1(WORKED_BYTES) == WORKED
    assert decode_d1(bytearray(WORKED_BYTES)) == WORKED
    assert decode_d1(memoryview(WORKED_BYTES)) == WORKED


def _angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


angles = st.floats(-180.0, 180.0, allow_nan=False, exclude_max=True)
positions = st.floats(-131072.0, 131071.98, allow_nan=False)


@SETTINGS
@given(st.integers(0, 255), angles, angles, angles, positions, positions, positions,
       st.integers(0, 0xFFFFFF), st.integers(0, 0xFFFFFF), st.integers(0, 0xFFFF))
def test_decode_encode_round_trip_within_quantisation(cam, pan, tilt, roll, x, y, z, zoom, focus, spare):
    pose = FreedPose(cam, pan, tilt, roll, x, y, z, zoom, focus, spare)
    data = encode_d1(pose)
    assert len(data) == 29 and data[0] == 0xD1 and sum(data) % 256 == 0x40
    back = decode_d1(data)
    assert (back.camera_id, back.zoom, back.focus, back.spare) == (cam, zoom, focus, spare)
    for got, want in ((back.pan_deg, pan), (back.tilt_deg, tilt), (back.roll_deg, roll)):
        assert _angle_diff(got, want) <= ANGLE_LSB / 2 + 1e-12
    for got, want in ((back.x_mm, x), (back.y_mm, y), (back.z_mm, z)):
        assert abs(got - want) <= POSITION_LSB / 2 + 1e-9
    assert encode_d1(back) == data           # decoded values are exactly representable


def test_extremes_of_the_24_bit_fields():
    top = FreedPose(255, -180.0, 179.99996948242188, 0.0, -131072.0, 131071.984375, 0.0, 0xFFFFFF, 0xFFFFFF,
                    0xFFFF)
    assert decode_d1(encode_d1(top)) == top


def test_angles_wrap_into_plus_minus_180():
    assert (encode_d1(dataclasses.replace(WORKED, pan_deg=350.0))
            == encode_d1(dataclasses.replace(WORKED, pan_deg=-10.0)))
    assert decode_d1(encode_d1(dataclasses.replace(WORKED, roll_deg=540.0))).roll_deg == -180.0
    assert decode_d1(encode_d1(dataclasses.replace(WORKED, pan_deg=180.0))).pan_deg == -180.0
    assert decode_d1(encode_d1(dataclasses.replace(WORKED, tilt_deg=-190.0))).tilt_deg == 170.0


@pytest.mark.parametrize("change, words", [
    ({"x_mm": 131072.0}, "x 131072 mm is outside"),
    ({"y_mm": -131073.0}, "y -131073 mm is outside"),
    ({"z_mm": float("nan")}, "z must be finite"),
    ({"pan_deg": float("inf")}, "pan must be finite"),
    ({"zoom": -1}, "zoom -1 is outside"),
    ({"focus": 1 << 24}, "focus 16777216 is outside"),
    ({"focus": 1.5}, "focus must be an integer"),
    ({"spare": 0x10000}, "spare 65536 is outside"),
    ({"camera_id": 256}, "camera id 256 is outside"),
])
def test_values_a_d1_cannot_carry_raise_a_clear_error(change, words):
    with pytest.raises(FreedRangeError, match=words):
        encode_d1(dataclasses.replace(WORKED, **change))
    assert issubclass(FreedRangeError, ValueError)


def test_every_single_bit_flip_is_detected():
    for byte in range(29):
        for bit in range(8):
            corrupt = bytearray(WORKED_BYTES)
            corrupt[byte] ^= 1 << bit
            with pytest.raises(ProtocolError):
                decode_d1(bytes(corrupt))


def test_checksum_error_is_named():
    corrupt = bytearray(WORKED_BYTES)
    corrupt[12] ^= 0x10
    with pytest.raises(ProtocolError, match="checksum"):
        decode_d1(bytes(corrupt))


@pytest.mark.parametrize("data, words", [
    (WORKED_BYTES[:28], "29 bytes, got 28"),
    (WORKED_BYTES + b"\x00", "29 bytes, got 30"),
    (b"", "29 bytes, got 0"),
])
def test_wrong_length_is_a_protocol_error(data, words):
    with pytest.raises(ProtocolError, match=words):
        decode_d1(data)


def test_wrong_message_type_is_a_protocol_error():
    body = b"\xD2" + WORKED_BYTES[1:28]
    with pytest.raises(ProtocolError, match="0xD2 is not D1"):
        decode_d1(body + bytes((freed_checksum(body),)))


# -- conventions -----------------------------------------------------------------------------------------

def test_camera_panned_left_gives_negative_freed_pan(flat_stage):
    pose = homogeneous(_deg(pan=10.0), [0.0, 0.0, 0.0])
    forward = pose[:3, :3] @ [0.0, 1.0, 0.0]
    assert forward[0] < 0                     # looking left of +Y: panned left (counter-clockwise from above)
    freed = freed_from_pose(pose, None, None, flat_stage)
    assert freed.pan_deg == pytest.approx(-10.0)
    assert (freed.tilt_deg, freed.roll_deg) == pytest.approx((0.0, 0.0))


def test_camera_tilted_up_gives_positive_freed_tilt(flat_stage):
    pose = homogeneous(_deg(tilt=7.5), [0.0, 0.0, 0.0])
    assert (pose[:3, :3] @ [0.0, 1.0, 0.0])[2] > 0
    freed = freed_from_pose(pose, None, None, flat_stage)
    assert (freed.pan_deg, freed.tilt_deg, freed.roll_deg) == pytest.approx((0.0, 7.5, 0.0))


def test_clockwise_roll_seen_from_behind_gives_positive_freed_roll(flat_stage):
    pose = homogeneous(_deg(roll=12.0), [0.0, 0.0, 0.0])
    up = pose[:3, :3] @ [0.0, 0.0, 1.0]
    assert up[0] > 0                          # the camera's top turns to camera-right: clockwise from behind
    freed = freed_from_pose(pose, None, None, flat_stage)
    assert (freed.pan_deg, freed.tilt_deg, freed.roll_deg) == pytest.approx((0.0, 0.0, 12.0))


def test_combined_rotation_and_position_in_millimetres(flat_stage):
    pose = homogeneous(_deg(pan=-30.0, tilt=-20.0, roll=5.0), [1.25, -2.5, 1.8])
    freed = freed_from_pose(pose, None, None, flat_stage)
    assert (freed.pan_deg, freed.tilt_deg, freed.roll_deg) == pytest.approx((30.0, -20.0, 5.0))
    assert (freed.x_mm, freed.y_mm, freed.z_mm) == pytest.approx((1250.0, -2500.0, 1800.0))
    np.testing.assert_allclose(engine_pose_from_freed(freed), pose, atol=1e-12)


def test_stage_to_engine_transform_is_applied(stage):
    """LED volume: the stage origin sits at (12, -3.5, 0) m in the engine, turned 90 deg counter-clockwise."""
    freed = freed_from_pose(np.eye(4), None, None, stage)
    assert (freed.x_mm, freed.y_mm, freed.z_mm) == pytest.approx((12000.0, -3500.0, 0.0))
    assert freed.pan_deg == pytest.approx(-90.0)   # stage +Y is engine -X: a quarter turn left
    forward = engine_pose_from_freed(freed)[:3, :3] @ [0.0, 1.0, 0.0]
    np.testing.assert_allclose(forward, [-1.0, 0.0, 0.0], atol=1e-12)
    pose = homogeneous(_deg(pan=20.0, tilt=10.0), [1.0, 2.0, 1.5])
    freed = freed_from_pose(pose, None, None, stage)
    np.testing.assert_allclose(engine_pose_from_freed(freed), stage.engine_from_stage @ pose, atol=1e-12)
    assert (freed.x_mm, freed.y_mm, freed.z_mm) == pytest.approx((12000.0 - 2000.0, -3500.0 + 1000.0, 1500.0))


def test_lens_counts_from_the_rig_calibration(ur_rig, flat_stage):
    axes = {a.name: a for a in ur_rig.lens}
    lens = {"focus": 3.0, "iris": 4.0, "zoom": 47.0}
    freed = freed_from_pose(np.eye(4), lens, ur_rig, flat_stage)
    assert freed.zoom == round(0.5 * 0xFFFF)                        # 24..70 mm, linear
    assert freed.focus == round(float(axes["focus"].encoder(3.0)) * 0xFFFF)
    assert 0.68 < float(axes["focus"].encoder(3.0)) < 0.69          # between the 2 m and 5 m points
    assert freed.spare == 0
    wide = freed_from_pose(np.eye(4), lens, ur_rig, flat_stage, full_scale=0xFFFFFF, iris_in_spare=True)
    assert wide.zoom == round(0.5 * 0xFFFFFF)
    assert wide.spare == round(0.375 * 0xFFFF)                      # f/4 is 0.375 in the calibration
    ends = freed_from_pose(np.eye(4), {"focus": 0.45, "zoom": 70.0}, ur_rig, flat_stage)
    assert (ends.focus, ends.zoom) == (0, 0xFFFF)


def test_missing_lens_channels_send_zero_counts(ur_rig, flat_stage):
    freed = freed_from_pose(np.eye(4), {"zoom": 24.0}, None, flat_stage)   # no rig: no calibration
    assert (freed.zoom, freed.focus, freed.spare) == (0, 0, 0)
    with pytest.raises(ValueError, match='unknown lens channel "zooom"'):
        freed_from_pose(np.eye(4), {"zooom": 35.0}, ur_rig, flat_stage)


def test_out_of_range_position_is_refused_not_clamped(flat_stage):
    pose = homogeneous(np.eye(3), [140.0, 0.0, 0.0])       # 140 m: beyond the +-131 m of the field
    freed = freed_from_pose(pose, None, None, flat_stage)
    with pytest.raises(FreedRangeError, match="x 140000 mm is outside"):
        encode_d1(freed)


# -- over a real socket ----------------------------------------------------------------------------------

def test_decode_what_was_sent_over_udp(ur_rig, stage):
    kin = Kinematics(ur_rig)
    lens = {"focus": 2.0, "iris": 2.8, "zoom": 35.0}
    tc = Timecode.parse("01:00:00:00", "25")
    rng = np.random.default_rng(7)
    with udp_receiver(2.0) as rx, VcamSender(freed=rx.getsockname()[1], camera_id=3) as sender:
        assert sender.freed_destination == rx.getsockname()
        for n in range(20):
            q = rng.uniform(ur_rig.lower, ur_rig.upper)
            pose = camera_pose_from_joints(kin, q)
            assert sender.send(pose, lens, tc + n, n, ur_rig, stage, 1_700_000_000_000_000_000)
            data, source = rx.recvfrom(2048)
            assert source[0] == "127.0.0.1"
            got = decode_d1(data)
            assert data == encode_d1(freed_from_pose(pose, lens, ur_rig, stage, 3))
            assert got.camera_id == 3
            world = stage.engine_from_stage @ kin.camera(q)
            # The stream is FK of the joints, to the protocol's quantisation.
            back = engine_pose_from_freed(got)
            assert np.max(np.abs(back[:3, 3] - world[:3, 3])) <= POSITION_LSB / 2 / 1000 + 1e-12
            assert math.degrees(rotation_angle(back[:3, :3], world[:3, :3])) <= 1.5 * ANGLE_LSB + 1e-9
        assert sender.stats.freed_sent == 20
        assert sender.stats.send_errors == sender.stats.encode_errors == 0


# -- the sender's safety rules ---------------------------------------------------------------------------

def test_sender_binds_to_loopback_and_bare_ports_go_to_loopback():
    with VcamSender(freed=40000, otrk=55555) as sender:
        assert {addr[0] for addr in sender.local_addresses.values()} == {"127.0.0.1"}
        assert sender.freed_destination == ("127.0.0.1", 40000)
        assert sender.otrk_destination == ("127.0.0.1", 55555)
    with VcamSender(freed="127.0.0.1") as sender:
        assert sender.freed_destination == ("127.0.0.1", 40000)       # FreeD default port (Unreal)
    with VcamSender() as sender:
        assert sender.local_addresses == {}


@pytest.mark.parametrize("kwargs, words", [
    ({"otrk": ("239.135.1.1", 55555)}, "multicast group: pass multicast=True"),
    ({"freed": ("224.0.0.251", 40000)}, "multicast group"),
    ({"freed": ("192.0.2.10", 40000)}, "not on loopback but the sender binds to 127.0.0.1"),
    ({"freed": ("255.255.255.255", 40000)}, "broadcast is not supported"),
    ({"freed": ("127.0.0.1", 0)}, "port must be 1..65535"),
    ({"freed": 40000, "bind": "localhost-ish"}, "bind must be an IPv4 interface address"),
    ({"freed": 40000, "camera_id": 256}, "camera id must be an integer 0..255"),
    ({"otrk": 55555, "source_number": -1}, "source number must be an integer"),
    ({"otrk": 55555, "source_id": "fc9bc480-02bd-4bd0-96c7-bce47197f720"}, "must be a urn:uuid"),
    ({"otrk": 55555, "encoding": "xml"}, "encoding must be"),
    ({"otrk": 55555, "max_payload": 0}, "max_payload must be"),
    ({"freed": 40000, "full_scale": 1 << 24}, "full scale must be an integer"),
])
def test_sender_refuses_unsafe_destinations(kwargs, words):
    with pytest.raises(ValueError, match=words):
        VcamSender(**kwargs)


def test_send_never_raises_and_counts_errors(ur_rig, stage):
    tc = Timecode(0, "24")
    with udp_receiver(2.0) as rx:
        sender = VcamSender(freed=rx.getsockname()[1], otrk=rx.getsockname()[1])
        bad = np.full((4, 4), np.nan)
        assert sender.send(bad, None, tc, 0, ur_rig, stage, 0) is False
        assert sender.stats.encode_errors == 2
        far = homogeneous(np.eye(3), [500.0, 0.0, 0.0])          # FreeD cannot carry it, OpenTrackIO can
        assert sender.send(far, None, tc, 1, ur_rig, stage, 0) is False
        stats = sender.stats
        assert (stats.encode_errors, stats.freed_sent, stats.otrk_samples_sent) == (3, 0, 1)
        assert "FreeD" in stats.last_error and "outside" in stats.last_error
        assert sender.send(np.eye(4), {"zoom": -3.0}, tc, 2, ur_rig, stage, 0) is False
        sender.close()
        assert sender.send(np.eye(4), None, tc, 3, ur_rig, stage, 0) is False
        assert sender.stats.send_errors == 2                      # one per protocol after close
        assert "closed" in sender.stats.last_error


def test_latency_is_measured_from_measured_at_to_sendto(ur_rig, stage):
    ticks = iter(range(1_000_500, 10_000_000, 100))
    with udp_receiver(2.0) as rx, VcamSender(freed=rx.getsockname()[1], otrk=rx.getsockname()[1],
                                        clock=lambda: next(ticks)) as sender:
        for n in range(3):
            assert sender.send(np.eye(4), None, Timecode(n, "24"), n, ur_rig, stage, 0,
                               measured_at_ns=1_000_000)
        stats = sender.stats
        assert stats.freed_latency.count == stats.otrk_latency.count == 3
        assert stats.freed_latency.last_ns == 1_000_900 - 1_000_000
        assert stats.otrk_latency.max_ns == 1_001_000 - 1_000_000
        assert stats.freed_latency.mean_ns == pytest.approx(700.0)
        sender.send(np.eye(4), None, Timecode(9, "24"), 9, ur_rig, stage, 0)   # no measured_at: not counted
        assert sender.stats.freed_latency.count == 3


def test_camera_pose_from_joints_is_fk(ur_rig):
    kin = Kinematics(ur_rig)
    np.testing.assert_array_equal(camera_pose_from_joints(kin, ur_rig.park), kin.camera(ur_rig.park))
    with pytest.raises(ValueError, match="expected 7 joint values"):
        camera_pose_from_joints(kin, [0.0, 1.0])
    with pytest.raises(ValueError, match="non-finite"):
        camera_pose_from_joints(kin, np.full(7, np.nan))
