"""End to end: ``motionctl vcam`` to a receiver on 127.0.0.1, ``export`` of planned and actual camera,
and ``import`` of a track back into a checked move."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from motionctl.vcam import decode_d1, decode_udp
from motionctl.vcam.tracks import read_track
from tests.conftest import MOVES, RIGS, dry_run, udp_receiver


def motionctl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "motionctl", *args], capture_output=True, text=True, timeout=timeout)


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    try:
        while True:
            out.append(sock.recvfrom(65536)[0])
    except socket.timeout:
        return out


def test_vcam_streams_every_frame_with_timecode():
    freed, otrk = udp_receiver(0.5, 4 << 20), udp_receiver(0.5, 4 << 20)
    result = motionctl("vcam", str(MOVES / "product_shot.toml"), "--freed", f"127.0.0.1:{freed.getsockname()[1]}",
                       "--otrk", f"127.0.0.1:{otrk.getsockname()[1]}")
    assert result.returncode == 0, result.stderr
    poses = [decode_d1(d) for d in _drain(freed)]
    samples = [decode_udp([d]) for d in _drain(otrk)]
    assert len(poses) == len(samples) == 156                     # 3.1 s at 50 fps, frames 0..155
    first, last = samples[0]["timing"]["timecode"], samples[-1]["timing"]["timecode"]
    assert (first["hours"], first["minutes"], first["seconds"], first["frames"]) == (2, 0, 0, 0)
    assert (last["seconds"], last["frames"]) == (3, 5)


def test_vcam_refuses_a_remote_destination_without_an_interface():
    result = motionctl("vcam", str(MOVES / "product_shot.toml"), "--freed", "10.1.2.3:40000")
    assert result.returncode == 2
    assert "vcam output" in result.stderr and "Traceback" not in result.stderr


def test_export_planned_and_actual_camera_and_import_it_back(tmp_path):
    planned = tmp_path / "orbit.chan"
    assert motionctl("export", str(MOVES / "orbit.toml"), "--format", "chan", "--out", str(planned)).returncode == 0
    track = read_track(planned, fps="25")
    assert len(track.frames) == 251
    ran = dry_run(str(MOVES / "orbit.toml"), "--transport", "serial", "--takes", str(tmp_path))
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    take = json.loads(ran.stdout)["take"]
    actual = tmp_path / "actual.json"
    exported = motionctl("export", take, "--format", "json", "--out", str(actual))
    assert exported.returncode == 0, exported.stderr
    assert "actual camera" in exported.stdout
    moved = read_track(actual)
    assert abs(len(moved.frames) - 251) <= 1
    move = tmp_path / "reimported.toml"
    imported = motionctl("import", str(actual), "--rig", str(RIGS / "ur10e_track.toml"), "--stage",
                         str(RIGS / "stages" / "led_volume.toml"), "--out", str(move), "--mode", "fit",
                         "--tolerance-mm", "1.0", "--tolerance-deg", "0.1")
    assert imported.returncode in (0, 1), imported.stderr            # written and checked; legality reported
    assert move.exists() and "keys from" in imported.stdout
    assert "LEGAL" in imported.stdout or "ILLEGAL" in imported.stdout


def test_export_of_a_folder_of_takes_says_which_folder_to_give(tmp_path):
    (tmp_path / "20261203-080000_orbit").mkdir()
    (tmp_path / "20261203-080000_orbit" / "meta.json").write_text("{}")
    result = motionctl("export", str(tmp_path), "--format", "csv", "--out", str(tmp_path / "out.csv"))
    assert result.returncode == 2
    assert "is a folder but not a take" in result.stderr and "20261203-080000_orbit" in result.stderr
    assert not (tmp_path / "out.csv").exists()


def test_a_non_loopback_destination_names_the_flag_to_use(tmp_path):
    result = motionctl("vcam", str(MOVES / "push_in.toml"), "--freed", "192.0.2.10:40000")
    assert result.returncode == 2 and "--vcam-bind" in result.stderr and "bind=" not in result.stderr


def test_import_with_a_bad_stage_writes_nothing(tmp_path):
    """issue 15 item 14: the move file was written before the stage path was found to be wrong."""
    planned = tmp_path / "push_in.chan"
    assert motionctl("export", str(MOVES / "push_in.toml"), "--format", "chan", "--out", str(planned)).returncode == 0
    out = tmp_path / "imported.toml"
    result = motionctl("import", str(planned), "--fps", "24", "--rig", str(RIGS / "ur10e_track.toml"), "--stage",
                       str(tmp_path / "no_such_stage.toml"), "--out", str(out))
    assert result.returncode == 2 and "no_such_stage.toml" in result.stderr, result.stderr
    assert not out.exists()


def test_chan_import_says_its_start_timecode_and_takes_one(tmp_path):
    """issue 15 item 14: a .chan file has no timecode; import said nothing and started at 00:00:00:00."""
    planned = tmp_path / "push_in.chan"
    assert motionctl("export", str(MOVES / "push_in.toml"), "--format", "chan", "--out", str(planned)).returncode == 0
    rig = str(RIGS / "ur10e_track.toml")
    plain = motionctl("import", str(planned), "--fps", "24", "--rig", rig, "--out", str(tmp_path / "a.toml"))
    assert "has no timecode" in plain.stdout and "--start" in plain.stdout
    given = motionctl("import", str(planned), "--fps", "24", "--rig", rig, "--out", str(tmp_path / "b.toml"),
                      "--start", "01:00:00:00")
    assert given.returncode in (0, 1), given.stderr
    assert 'start = "01:00:00:00"' in (tmp_path / "b.toml").read_text()
