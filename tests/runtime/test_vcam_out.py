"""During a run, the engine gets one FreeD and one OpenTrackIO sample per frame, built from the MEASURED
joints: decoded from real UDP datagrams on 127.0.0.1, they equal FK of the take's measured joints."""

from __future__ import annotations

import json
import socket

import jsonschema
import numpy as np

from motionctl.kinematics import Kinematics
from motionctl.runtime.streamer import RunState, StreamerOptions
from motionctl.runtime.takes import read_take
from motionctl.runtime.vcam_out import VcamPublisher
from motionctl.vcam import VcamSender, decode_d1, decode_udp, engine_pose, engine_pose_from_freed
from motionctl.rotations import matrix_to_ptr, rotation_angle
from tests.conftest import OPENTRACKIO, udp_receiver

CALM = StreamerOptions(stall_cycles=50, late_budget=0.5, stale_feedback_s=0.3)
SCHEMA = json.loads((OPENTRACKIO / "schema.json").read_text())


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recvfrom(65536)[0])
        except socket.timeout:
            return out


def test_stream_equals_fk_of_measured_joints(product_plan, sim_rig, tmp_path):
    freed_rx, otrk_rx = udp_receiver(0.2, 4 << 20), udp_receiver(0.2, 4 << 20)
    rig = sim_rig()
    sender = VcamSender(freed_rx.getsockname(), otrk_rx.getsockname())
    publisher = VcamPublisher(sender, product_plan.rig, product_plan.stage, rig.driver.axis_names)
    result = rig.take(product_plan, tmp_path, options=CALM, vcam=publisher)
    assert result.state is RunState.DONE, result.summary["faults"]
    freed = [decode_d1(d) for d in _drain(freed_rx)]
    otrk = [decode_udp([d]) for d in _drain(otrk_rx)]
    fps = float(product_plan.move.rate.fps)
    assert len(otrk) >= product_plan.trajectory.duration_s * fps          # one per frame, at least the run
    take = read_take(result.take)
    col = take.columns.index
    kin = Kinematics(product_plan.rig)
    names = product_plan.rig.axis_names
    measured = np.array([[float(r[col(f"meas_{a}")]) for a in names] for r in take.rows if r[col(f"meas_{names[0]}")]])
    engine = np.array([engine_pose(p, product_plan.stage) for p in kin.camera(measured)])
    for sample in otrk:
        jsonschema.validate(sample, SCHEMA)
        t = sample["transforms"][0]["translation"]
        gap = np.linalg.norm(engine[:, :3, 3] - [t["x"], t["y"], t["z"]], axis=1)
        best = int(np.argmin(gap))
        assert gap[best] < 1e-6, "a streamed pose is not FK of any measured joint vector"
        pan, tilt, roll = np.degrees(matrix_to_ptr(engine[best, :3, :3]))
        r = sample["transforms"][0]["rotation"]
        assert abs((r["pan"] - pan + 180) % 360 - 180) < 1e-6 and abs(r["tilt"] - tilt) < 1e-6
    # Frames of the run are labelled with their timecode, in order.
    labels = [s["timing"]["timecode"] for s in otrk]
    assert any(tc["seconds"] > 0 or tc["frames"] > 0 for tc in labels)
    # FreeD: the same measured camera, within the protocol's quantisation (1/64 mm, 1/32768 deg).
    assert len(freed) >= product_plan.trajectory.duration_s * fps
    for pose in freed:
        back = engine_pose_from_freed(pose)
        gap = np.linalg.norm(engine[:, :3, 3] - back[:3, 3], axis=1)
        turn = np.degrees(rotation_angle(engine[:, :3, :3], back[:3, :3]))
        best = int(np.argmin(gap / 1e-5 + turn / 1e-4))      # the measured sample it was built from
        assert gap[best] < 0.5 * np.sqrt(3) / 64 / 1000 + 1e-9
        assert turn[best] < 1e-4
    assert result.summary["link"]["vcam"]["send_errors"] == 0
