"""Camera tracks: file round trips, the Nuke .chan axis mapping, import into moves that plan back onto the
track, tracks from plans and takes, and bad files reported on one line with file:line."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motionctl.errors import InputError
from motionctl.planner import plan_scene
from motionctl.rotations import rotation_angle
from motionctl.runtime.takes import TakeWriter, read_take
from motionctl.spec import load_scene
from motionctl.timecode import FRAME_RATES, frame_to_label
from motionctl.vcam.track_import import import_track, track_to_move
from motionctl.vcam.tracks import CameraTrack, read_track, track_from_plan, track_from_take, write_track
from motionctl.vcam.tracks_dcc import Y_UP, focal_to_vfov
from tests.conftest import MOVES, RIGS

SETTINGS = settings(derandomize=True, database=None, max_examples=60, deadline=None)
RATES = list(FRAME_RATES.values())


# -- random tracks ------------------------------------------------------------------------------------

@st.composite
def tracks(draw, lens_axes=("focus", "iris", "zoom"), follow=True):
    rate = draw(st.sampled_from(RATES))
    n = draw(st.integers(1, 12))
    steps = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    frames = draw(st.integers(0, 5000)) + np.cumsum(steps) - steps[0]
    start = draw(st.integers(0, rate.frames_per_day - 1))          # labels may wrap past midnight

    def column(lo, hi):
        values = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
        return draw(st.lists(values, min_size=n, max_size=n))

    position = np.column_stack([column(-50, 50) for _ in range(3)])
    ptr = np.column_stack([column(-720, 720), column(-90, 90), column(-720, 720)])
    ranges = {"focus": (0.3, 100.0), "iris": (1.0, 32.0), "zoom": (5.0, 300.0)}
    chosen = draw(st.lists(st.sampled_from(lens_axes), unique=True)) if lens_axes else []
    lens = {k: column(*ranges[k]) for k in chosen}
    axes = {"track": column(-5, 5)} if follow and draw(st.booleans()) else {}     # a rig's follow axis
    return CameraTrack(rate, frame_to_label(start, rate), frames, position, ptr, lens, "random", axes)


def _assert_same(a: CameraTrack, b: CameraTrack, atol=0.0, rtol=0.0):
    assert a.fps == b.fps and a.start == b.start
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_allclose(b.position, a.position, atol=atol, rtol=rtol)
    np.testing.assert_allclose(b.ptr, a.ptr, atol=atol, rtol=rtol)
    assert list(a.lens) == list(b.lens)
    for k in a.lens:
        np.testing.assert_allclose(b.lens[k], a.lens[k], atol=atol, rtol=rtol)
    assert list(a.follow) == list(b.follow)
    for k in a.follow:
        np.testing.assert_allclose(b.follow[k], a.follow[k], atol=atol, rtol=rtol)


@SETTINGS
@given(track=tracks())
def test_csv_round_trip_is_exact(track, tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    write_track(track, path)
    _assert_same(track, read_track(path))


@SETTINGS
@given(track=tracks())
def test_json_round_trip_is_exact(track, tmp_path_factory):
    path = tmp_path_factory.mktemp("json") / "t.json"
    write_track(track, path)
    _assert_same(track, read_track(path))


@SETTINGS
@given(track=tracks(lens_axes=("zoom",), follow=False), units=st.sampled_from(["m", "cm", "mm"]),
       lens_column=st.sampled_from(["vfov", "focal"]))
def test_chan_round_trip(track, units, lens_column, tmp_path_factory):
    path = tmp_path_factory.mktemp("chan") / "t.chan"
    write_track(track, path, units=units, lens_column=lens_column)
    back = read_track(path, fps=track.fps, units=units, start=track.start.label, lens_column=lens_column)
    _assert_same(track, back, atol=1e-12, rtol=1e-12)


@SETTINGS
@given(track=tracks(lens_axes=(), follow=False), order=st.sampled_from(["XYZ", "XZY", "YXZ", "YZX", "ZYX"]))
def test_chan_round_trip_in_other_rotation_orders_keeps_the_rotation(track, order, tmp_path_factory):
    path = tmp_path_factory.mktemp("chan") / "t.chan"
    write_track(track, path, rotation_order=order)
    back = read_track(path, fps=track.fps, start=track.start.label, rotation_order=order)
    np.testing.assert_allclose(back.position, track.position, atol=1e-12)
    assert np.degrees(rotation_angle(back.rotations, track.rotations)).max() < 1e-9
    assert np.all(np.abs(back.tilt) <= 90.0)


# -- the .chan axis mapping on hand-made poses ---------------------------------------------------------

def _nuke_camera(rx, ry, rz):
    """Nuke's camera axes (right, up, forward = -Z) in Nuke's Y-up world, written out independently:
    rotation order ZXY applies rz first, then rx, then ry (M = Ry Rx Rz)."""
    c, s = math.cos, math.sin
    rx, ry, rz = map(math.radians, (rx, ry, rz))
    mx = np.array([[1, 0, 0], [0, c(rx), -s(rx)], [0, s(rx), c(rx)]])
    my = np.array([[c(ry), 0, s(ry)], [0, 1, 0], [-s(ry), 0, c(ry)]])
    mz = np.array([[c(rz), -s(rz), 0], [s(rz), c(rz), 0], [0, 0, 1]])
    m = my @ mx @ mz
    return m[:, 0], m[:, 1], -m[:, 2]


def _nuke_to_stage(v):
    x, y, z = v
    return np.array([x, -z, y])          # x_stage = x, y_stage = -z, z_stage = y


@pytest.mark.parametrize("rx, ry, rz, forward, up", [
    (0, 0, 0, [0, 1, 0], [0, 0, 1]),                 # looks down Nuke -Z = stage +Y (towards the wall)
    (0, 90, 0, [-1, 0, 0], [0, 0, 1]),               # ry = 90 looks along Nuke -X = stage -X: pan +90 (left)
    (0, -90, 0, [1, 0, 0], [0, 0, 1]),
    (30, 0, 0, [0, math.cos(math.radians(30)), 0.5], None),     # rx > 0 looks up: tilt +30
    (0, 0, 90, [0, 1, 0], [-1, 0, 0]),               # rz = 90: picture up turns to camera-left: roll -90
    (0, 180, 0, [0, -1, 0], [0, 0, 1]),
])
def test_chan_axis_mapping_on_hand_made_poses(tmp_path, rx, ry, rz, forward, up):
    path = tmp_path / "cam.chan"
    path.write_text(f"1001 1.0 2.0 3.0 {rx} {ry} {rz}\n")
    track = read_track(path, fps=25)
    assert track.frames.tolist() == [1001]
    np.testing.assert_allclose(track.position[0], [1.0, -3.0, 2.0])
    r = track.rotations[0]
    np.testing.assert_allclose(r[:, 1], forward, atol=1e-12)        # stage camera looks along its +Y
    if up is not None:
        np.testing.assert_allclose(r[:, 2], up, atol=1e-12)
    np.testing.assert_allclose(track.ptr[0], [ry, rx, -rz], atol=1e-12)


@pytest.mark.parametrize("rx, ry, rz", [(10, 120, -15), (-35, -60, 25), (100, 30, 20), (-170, 10, 5)])
def test_chan_general_poses_match_an_independent_construction(tmp_path, rx, ry, rz):
    path = tmp_path / "cam.chan"
    path.write_text(f"0 0 0 0 {rx} {ry} {rz}\n")
    track = read_track(path, fps="24")
    right, up, forward = (_nuke_to_stage(v) for v in _nuke_camera(rx, ry, rz))
    r = track.rotations[0]
    np.testing.assert_allclose(r[:, 0], right, atol=1e-12)
    np.testing.assert_allclose(r[:, 1], forward, atol=1e-12)
    np.testing.assert_allclose(r[:, 2], up, atol=1e-12)
    assert abs(track.tilt[0]) <= 90.0                                # |rx| > 90 is re-expressed
    np.testing.assert_allclose(Y_UP @ Y_UP.T, np.eye(3))


def test_chan_lens_column_is_vertical_fov_by_default(tmp_path):
    path = tmp_path / "cam.chan"
    vfov = float(focal_to_vfov(35.0))                                # Nuke's 18.672 mm vertical aperture
    path.write_text(f"1 0 0 0 0 0 0 {vfov!r}\n2 0 0 0 0 0 0 {vfov!r}\n")
    np.testing.assert_allclose(read_track(path, fps=25).lens["zoom"], [35.0, 35.0])
    np.testing.assert_allclose(read_track(path, fps=25, lens_column="focal").lens["zoom"], [vfov, vfov])
    np.testing.assert_allclose(read_track(path, fps=25, units="cm").position, 0.0)


def test_csv_frames_from_timecodes_and_rate_from_times(tmp_path):
    path = tmp_path / "tc.csv"
    path.write_text("timecode,t_s,x_m,y_m,z_m,pan_deg,tilt_deg,roll_deg,zoom\n"
                    "00:59:59;29,0.0,0,0,1,0,0,0,35\n01:00:00;00,0.03336666666666667,0,0,1,1,0,0,36\n"
                    "01:01:00;02,60.09336666666667,0,0,1,2,0,0,37\n")
    track = read_track(path)
    assert track.fps.label == "29.97df" and track.start.label == "00:59:59;29"
    assert track.frames.tolist() == [0, 1, 1801]          # 01:01:00;00 and ;01 do not exist
    np.testing.assert_allclose(track.lens["zoom"], [35, 36, 37])
    path.write_text("# fps=24\n# start=01:00:00:00\nframe,x_m,y_m,z_m,pan_deg,tilt_deg,roll_deg\n"
                    "1001,0,0,1,0,0,0\n")
    track = read_track(path)
    assert track.start.label == "01:00:00:00" and track.timecodes == ["01:00:41:17"]


# -- motionctl's own exports and plans -------------------------------------------------------------------

@pytest.fixture(scope="module")
def orbit():
    plan = plan_scene(load_scene(MOVES / "orbit.toml"), 250)
    assert plan.ok
    return plan, track_from_plan(plan)


def test_reads_what_export_writes(orbit, tmp_path):
    plan, track = orbit
    write_track(track, tmp_path / "full.csv")
    bare = [line for line in (tmp_path / "full.csv").read_text().splitlines() if not line.startswith("#")]
    (tmp_path / "e.csv").write_text("\n".join(bare) + "\n")           # no "# fps=" comment: rate from t_s
    write_track(track, tmp_path / "e.json")
    from_csv = read_track(tmp_path / "e.csv")                      # rate from t_s, start from the timecodes
    from_json = read_track(tmp_path / "e.json")
    for back in (from_csv, from_json):
        _assert_same(track, back)
        assert back.start.label == "10:00:00:00" and back.fps.label == "25"
    assert len(track) == plan.report.frames
    _assert_same(track, CameraTrack.from_rows(track.fps, track.start, track.rows()))
    np.testing.assert_array_equal(track.frames, np.arange(len(track)))
    with pytest.raises(InputError, match="the file says 25 but 24 was given"):
        read_track(tmp_path / "e.json", fps=24)


def _planned_copy(text: str, tmp_path):
    """The move next to a copy of the rigs, loaded and planned like any move file."""
    path = tmp_path / "moves" / "imported.toml"
    path.write_text(text)
    return plan_scene(load_scene(path), 250)


def _deviation(a: CameraTrack, b: CameraTrack) -> tuple[float, float]:
    np.testing.assert_array_equal(a.frames - a.frames[0], b.frames - b.frames[0])
    return (float(np.linalg.norm(a.position - b.position, axis=1).max()),
            float(np.degrees(rotation_angle(a.rotations, b.rotations)).max()))


@pytest.fixture()
def rig_copy(tmp_path):
    shutil.copytree(RIGS, tmp_path / "rigs")
    (tmp_path / "moves").mkdir()
    return tmp_path / "rigs" / "ur10e_track.toml", tmp_path / "rigs" / "stages" / "led_volume.toml"


def test_import_keys_mode_reproduces_the_track(orbit, rig_copy, tmp_path):
    plan, track = orbit
    rig, stage = rig_copy
    result = import_track(track, rig, stage, mode="keys", name="orbit-keys",
                          out_path=tmp_path / "moves" / "imported.toml")
    assert 'rig = "../rigs/ur10e_track.toml"' in result.text
    assert 'stage = "../rigs/stages/led_volume.toml"' in result.text
    # The holds at both ends come back as holds, every other frame is a key.
    assert result.key_frames[:2] == (0, 11) and result.key_frames[-1] == 240
    assert "hold = 10" in result.text and len(result.key_frames) == len(track) - 20
    replanned = _planned_copy(result.text, tmp_path)
    assert replanned.ok, [v.message for v in replanned.report.violations]
    assert replanned.move.start.label == "10:00:00:00"
    position_m, angle_deg = _deviation(track, track_from_plan(replanned))
    assert position_m < 1e-4 and angle_deg < 0.01
    for k in track.lens:
        np.testing.assert_allclose(track_from_plan(replanned).lens[k], track.lens[k], atol=1e-9)


def test_import_fit_mode_stays_within_tolerance(orbit, rig_copy, tmp_path):
    plan, track = orbit
    rig, stage = rig_copy
    result = import_track(track, rig, stage, mode="fit", tolerance_m=0.0005, tolerance_deg=0.05,
                          name="orbit-fit", out_path=tmp_path / "moves" / "imported.toml")
    assert 3 <= len(result.key_frames) < len(track) // 5
    assert result.max_position_error_m <= 0.0005 and result.max_angle_error_deg <= 0.05
    assert "Largest deviation" in result.text
    replanned = _planned_copy(result.text, tmp_path)
    assert replanned.trajectory is not None, [v.message for v in replanned.report.violations]
    position_m, angle_deg = _deviation(track, track_from_plan(replanned))
    assert position_m <= 0.0005 and angle_deg <= 0.05
    # A tighter tolerance keeps more keys.
    tight = import_track(track, rig, stage, mode="fit", tolerance_m=0.00005, tolerance_deg=0.005)
    assert len(tight.key_frames) > len(result.key_frames)
    assert tight.max_position_error_m <= 0.00005 and tight.max_angle_error_deg <= 0.005


def test_import_of_a_moving_cg_camera_notes_that_moves_start_at_rest(tmp_path):
    n = 80
    t = np.arange(n) / 25.0
    position = np.column_stack([0.2 * t, -1.0 + 0.1 * np.sin(t), 1.4 + 0.05 * t])
    ptr = np.column_stack([10 * np.sin(0.5 * t), -3.0 + t, np.zeros(n)])
    track = CameraTrack("25", "01:00:00:00", np.arange(1001, 1001 + n), position, ptr, {"zoom": 35 + t})
    text = track_to_move(track, RIGS / "ur10e_track.toml", mode="fit", tolerance_m=0.0002, tolerance_deg=0.02,
                         out_path=tmp_path / "m.toml")
    assert "not at rest at its first frame" in text and "not at rest at its last frame" in text
    (tmp_path / "m.toml").write_text(text)
    move = load_scene(tmp_path / "m.toml").move          # a valid move file: the loader accepts it
    assert move.start.label == "01:00:40:01"              # track frame 1001 is move frame 0
    assert move.keys[-1].frame == n - 1 and move.keys[0].lens["zoom"] == 35.0
    result = import_track(track, RIGS / "ur10e_track.toml", mode="fit", tolerance_m=0.0002,
                          tolerance_deg=0.02)
    assert result.max_position_error_m <= 0.0002 and result.max_angle_error_deg <= 0.02
    assert result.max_lens_error["zoom"] <= 0.01


def test_track_from_take_is_the_measured_camera(orbit, tmp_path):
    plan, track = orbit
    rig, traj = plan.rig, plan.trajectory
    names = tuple(rig.axis_names) + tuple(l.name for l in rig.lens)
    writer = TakeWriter(tmp_path, {"move": plan.move.name, "rig": rig.name, "fps": plan.move.rate.label,
                                   "start_timecode": plan.move.start.label}, names, plan.rate_hz)
    fps = float(plan.move.rate.fps)
    nothing = np.zeros(len(names))
    for tick in range(5):                                     # before the run: not the move
        writer.sample(tick, 0.0, "armed", 0, plan.move.timecode_at(0), 0.0, nothing + 1, nothing + 1, nothing)
    for i, t in enumerate(traj.t):
        frame = min(int(math.floor(t * fps + 1e-9)), plan.report.frames - 1)
        measured = np.concatenate([traj.q[i], traj.lens[i]])
        writer.sample(i + 5, t, "running", frame, plan.move.timecode_at(frame), 0.0, measured + 0.1, measured,
                      nothing)
    writer.sample(len(traj.t) + 5, traj.t[-1], "done", plan.report.frames - 1, "", 0.0, nothing, nothing,
                  nothing)
    writer.finish({"state": "done"})
    actual = track_from_take(read_take(writer.path), rig)
    assert actual.start == track.start and actual.fps == track.fps
    position_m, angle_deg = _deviation(track, actual)
    assert position_m < 1e-9 and angle_deg < 1e-7
    for k in track.lens:
        np.testing.assert_allclose(actual.lens[k], track.lens[k], atol=1e-12)
    assert list(actual.follow) == list(track.follow) == ["track"]          # the measured track, in metres
    np.testing.assert_allclose(actual.follow["track"], track.follow["track"], atol=1e-12)


# -- bad input ------------------------------------------------------------------------------------------

GOOD_CSV = "# fps=25\nframe,x_m,y_m,z_m,pan_deg,tilt_deg,roll_deg\n0,0,0,1,0,0,0\n1,0,0,1,0,0,0\n"


@pytest.mark.parametrize("name, text, line, message", [
    ("a.csv", GOOD_CSV.replace("1,0,0,1", "1,abc,0,1"), 4, '"abc" is not a number'),
    ("a.csv", GOOD_CSV.replace("1,0,0,1,0,0,0", "1,0,0,1,0,0"), 4, "expected 7 values"),
    ("a.csv", GOOD_CSV.replace("x_m", "x_mm"), 2, 'unknown column "x_mm" (did you mean "x_m"?)'),
    ("a.csv", GOOD_CSV.replace("\n1,", "\n0,"), 4, "frame 0 does not come after frame 0"),
    ("a.csv", GOOD_CSV.replace("# fps=25", "# fps=26"), 1, "unknown frame rate"),
    ("a.csv", GOOD_CSV.replace("# fps=25\n", ""), 1, "no frame rate"),
    ("a.csv", GOOD_CSV.replace("0,0,0,1,0,0,0", "0,0,0,1,0,nan,0"), 3, "not a finite number"),
    ("a.csv", "# fps=25\ntimecode,frame,x_m,y_m,z_m,pan_deg,tilt_deg,roll_deg\n"
              "01:00:00:00,0,0,0,0,0,0,0\n01:00:00:02,1,0,0,0,0,0,0\n", 4, "is not frame 1"),
    ("a.json", '{"fps": "25", "frames": [\n {"frame": 0, "x_m": 0, "y_m": 0, "z_m": 0, "pan_deg": 0,\n'
               '  "tilt_deg": 0, "roll_deg": 0},\n {"frame": 1, "x_m": 0,\n  "y_m": "x", "z_m": 0,'
               ' "pan_deg": 0, "tilt_deg": 0, "roll_deg": 0}]}\n', 5, '"x" is not a number'),
    ("a.json", '[{"frame": 0,\n "x_m": 0, "y_m": 0, "z_m": 0, "pan_deg": 0, "tilt_deg": 0, "roll_deg": 0},\n'
               ' {"frame": 1, "x_m": 0, "y_m": 0, "z_m": 0, "pan_deg": 0, "tilt_deg": 0, "roll_deg": null}]',
     3, "null is not a number"),
    ("a.json", '{"fps": 25,\n "frames": [}\n', 2, "not valid JSON"),
    ("a.chan", "1 0 0 0 0 0 0\n2 0 0 0 0 0\n", 2, "expected 7 columns"),
    ("a.chan", "1 0 0 0 0 0 0\n\n2 0 0 0 0 zero 0\n", 3, '"zero" is not a number'),
    ("a.chan", "1 0 0 0 0 0 0\n2 0 0 0 0 0 0\n2 0 0 0 0 0 0\n", 3, "frame 2 does not come after frame 2"),
    ("a.chan", "1.5 0 0 0 0 0 0\n", 1, "whole number"),
])
def test_bad_files_are_one_line_with_file_and_line(tmp_path, name, text, line, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_track(path, fps=25 if name.endswith(".chan") else None)
    shown = str(info.value)
    assert "\n" not in shown
    assert shown.startswith(f"{path}:{line}: "), shown
    assert message in shown, shown


def test_other_input_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_track(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="cannot tell the camera track format"):
        read_track(tmp_path / "track.txt")
    (tmp_path / "t.chan").write_text("1 0 0 0 0 0 0\n")
    with pytest.raises(InputError, match="does not say its frame rate"):
        read_track(tmp_path / "t.chan")
    with pytest.raises(InputError, match="units must be one of"):
        read_track(tmp_path / "t.chan", fps=25, units="ft")
    track = read_track(tmp_path / "t.chan", fps=25)
    with pytest.raises(InputError, match="one frame cannot become a move"):
        track_to_move(track, RIGS / "ur10e_track.toml")
    with pytest.raises(InputError, match='import mode must be "keys" or "fit"'):
        track_to_move(track, RIGS / "ur10e_track.toml", mode="best")


def test_usd_round_trip_or_a_clear_hint(tmp_path):
    track = CameraTrack("25", "01:00:00:00", np.arange(3), [[0, -2, 1.5], [0.1, -2, 1.5], [0.2, -2, 1.5]],
                        [[10, -5, 0], [12, -4, 1], [14, -3, 2]], {"zoom": [35.0, 36.0, 37.0]}, "usd")
    try:
        import pxr  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="pip install usd-core") as info:
            write_track(track, tmp_path / "cam.usda")
        assert "\n" not in str(info.value)
        with pytest.raises(InputError, match="pip install usd-core"):
            read_track(tmp_path / "cam.usda")
        pytest.skip("usd-core (pxr) is not installed: the USD round trip is not tested")
    write_track(track, tmp_path / "cam.usda")
    back = read_track(tmp_path / "cam.usda")
    _assert_same(track, back, atol=1e-9)
