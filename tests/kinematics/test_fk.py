"""Batched FK against independent references: roboticstoolbox's own URDF loader and DH/ETS models."""

from __future__ import annotations

import warnings

import numpy as np
import roboticstoolbox as rtb
from roboticstoolbox import ET, DHRobot, RevoluteDH

from motionctl.kinematics import Kinematics
from tests.conftest import RIGS


def _random_q(rig, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(rig.lower, rig.upper, size=(count, len(rig.axes)))


def test_every_link_frame_matches_roboticstoolbox_urdf_loader(ur_rig):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        reference = rtb.Robot.URDF(str((RIGS / "urdf" / "ur10e_track.urdf").resolve()))
    kin = Kinematics(ur_rig)
    q = _random_q(ur_rig, 40, seed=1)
    frames = kin.link_frames(q)
    assert frames.shape == (40, len(ur_rig.links), 4, 4)
    for n in range(len(q)):
        for i, link in enumerate(ur_rig.links):
            expected = np.array(ur_rig.base) @ reference.fkine(q[n], end=link.name).A
            np.testing.assert_allclose(frames[n, i], expected, atol=1e-12)


def test_ur_camera_matches_published_dh_parameters(ur_rig):
    """UR10e DH (d1, a2, a3, d4, d5, d6) on the track and 0.6 m riser, then the camera mount."""
    d = [0.1807, 0, 0, 0.17415, 0.11985, 0.11655]
    a = [0, -0.6127, -0.57155, 0, 0, 0]
    alpha = [np.pi / 2, 0, 0, np.pi / 2, -np.pi / 2, 0]
    arm = DHRobot([RevoluteDH(d=d[i], a=a[i], alpha=alpha[i]) for i in range(6)])
    kin = Kinematics(ur_rig)
    q = _random_q(ur_rig, 50, seed=2)
    cams = kin.camera(q)
    for n in range(len(q)):
        track = np.eye(4)
        track[0, 3] = q[n, 0]
        track[2, 3] = 0.6
        expected = np.array(ur_rig.base) @ track @ arm.fkine(q[n, 1:]).A @ np.array(ur_rig.camera_mount)
        np.testing.assert_allclose(cams[n], expected, atol=1e-12)


def test_crane_matches_hand_built_ets(crane_rig):
    """The crane's ETS strings, re-typed here as roboticstoolbox ETs (degrees -> radians by hand)."""
    ets = (ET.tx(jindex=0) * ET.tz(0.6) * ET.Rz(jindex=1) * ET.tz(1.0) * ET.Ry(jindex=2, flip=True)
           * ET.tx(jindex=3) * ET.tx(3.0) * ET.Rz(jindex=4) * ET.tz(-0.4) * ET.Ry(jindex=5, flip=True)
           * ET.Rx(jindex=6))
    kin = Kinematics(crane_rig)
    q = _random_q(crane_rig, 50, seed=3)
    cams = kin.camera(q)
    for n in range(len(q)):
        expected = np.array(crane_rig.base) @ ets.fkine(q[n]).A @ np.array(crane_rig.camera_mount)
        np.testing.assert_allclose(cams[n], expected, atol=1e-12)


def test_single_sample_and_batch_agree(ur_rig):
    kin = Kinematics(ur_rig)
    q = _random_q(ur_rig, 5, seed=4)
    batch = kin.camera(q)
    for n in range(5):
        np.testing.assert_allclose(kin.camera(q[n]), batch[n], atol=0)


def test_capsules_follow_their_links(ur_rig):
    kin = Kinematics(ur_rig)
    q = _random_q(ur_rig, 3, seed=5)
    frames = kin.link_frames(q)
    a, b = kin.capsules_world(frames)
    caps = kin.capsules
    for n in range(3):
        for c in range(len(caps.radius)):
            f = frames[n, caps.link[c]]
            np.testing.assert_allclose(a[n, c], f[:3, :3] @ caps.a[c] + f[:3, 3], atol=1e-12)
            np.testing.assert_allclose(b[n, c], f[:3, :3] @ caps.b[c] + f[:3, 3], atol=1e-12)
