"""The loaders on good input: every shipped file loads, units become SI, models are immutable.

Also the line map behind every error message (:func:`motionctl.spec.source.key_lines`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from motionctl.errors import SpecError
from motionctl.rotations import look_at_ptr, ptr_to_matrix, rot_z
from motionctl.spec import (
    Axis, CameraKey, Key, LensAxis, Move, Rig, Scene, Stage, ZoneKind, load_move, load_rig, load_scene,
    load_stage,
)
from motionctl.spec.shapes import Box, Cylinder, Plane
from motionctl.spec.source import key_lines

ROOT = Path(__file__).resolve().parents[2]
RIG_FILES = sorted((ROOT / "rigs").glob("*.toml"))
STAGE_FILES = sorted((ROOT / "rigs" / "stages").glob("*.toml"))
MOVE_FILES = sorted((ROOT / "moves").glob("*.toml")) + sorted((ROOT / "moves" / "illegal").glob("*.toml"))

UR10E_AXES = ("track", "shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3")
CRANE_AXES = ("track", "rotate", "lift", "extend", "pan", "tilt", "roll")


def line_containing(text: str, marker: str, nth: int = 0) -> int:
    return [n for n, line in enumerate(text.splitlines(), start=1) if marker in line][nth]


@pytest.fixture(scope="module")
def ur10e() -> Rig:
    return load_rig(ROOT / "rigs" / "ur10e_track.toml")


@pytest.fixture(scope="module")
def crane() -> Rig:
    return load_rig(ROOT / "rigs" / "moco_crane.toml")


@pytest.fixture(scope="module")
def volume() -> Stage:
    return load_stage(ROOT / "rigs" / "stages" / "led_volume.toml")


def scene(name: str) -> Scene:
    return load_scene(ROOT / "moves" / name)


# -- every shipped file loads ---------------------------------------------------------------------


def test_there_are_shipped_files() -> None:
    assert len(RIG_FILES) >= 2 and len(STAGE_FILES) >= 1 and len(MOVE_FILES) >= 6


@pytest.mark.parametrize("path", RIG_FILES, ids=lambda p: p.name)
def test_every_shipped_rig_loads(path: Path) -> None:
    rig = load_rig(path)
    assert isinstance(rig, Rig) and rig.file == str(path)
    assert rig.axes and all(isinstance(a, Axis) for a in rig.axes)
    assert all(a.min < a.max and a.vmax > 0 and a.amax > 0 and a.jmax > 0 for a in rig.axes)
    chain = [l.joint.variable for l in rig.links if l.joint is not None]
    assert list(rig.axis_names) == chain                    # axes in chain order
    assert rig.park.shape == (len(rig.axes),) and np.all(np.isfinite(rig.park))
    assert np.all(rig.park >= rig.lower) and np.all(rig.park <= rig.upper)
    assert rig.base.shape == (4, 4) and rig.camera_mount.shape == (4, 4)
    assert 0 <= rig.camera_link < len(rig.links)
    assert {l.name for l in rig.lens} == {"focus", "iris", "zoom"}


@pytest.mark.parametrize("path", STAGE_FILES, ids=lambda p: p.name)
def test_every_shipped_stage_loads(path: Path) -> None:
    stage = load_stage(path)
    assert isinstance(stage, Stage) and stage.obstacles
    assert len({z.name for z in stage.zones}) == len(stage.zones)
    assert all(z.clearance_m >= 0 for z in stage.zones)


@pytest.mark.parametrize("path", MOVE_FILES, ids=lambda p: p.name)
def test_every_shipped_move_loads(path: Path) -> None:
    loaded = load_scene(path)
    move = loaded.move
    assert isinstance(move, Move) and move.file == str(path)
    assert move.rig_path.resolve() == Path(loaded.rig.file).resolve()
    assert loaded.stage is not None and move.stage_path.resolve() == Path(loaded.stage.file).resolve()
    frames = [k.frame for k in move.keys]
    assert frames[0] == 0 and frames == sorted(set(frames))
    assert all(k.index == i for i, k in enumerate(move.keys))
    # load_move with and without the rig gives the same keys.
    for other in (load_move(path), load_move(path, loaded.rig)):
        assert [k.frame for k in other.keys] == frames
        assert other.rate == move.rate and other.start == move.start


# -- SI units: every value against the raw TOML (metres stay metres, degrees become radians) ----------


def raw(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", RIG_FILES, ids=lambda p: p.name)
def test_rig_axes_in_si(path: Path) -> None:
    rig, doc = load_rig(path), raw(path)
    written = {a["name"]: a for a in doc["axis"]}
    assert set(rig.axis_names) == set(written)
    for axis in rig.axes:
        row = written[axis.name]
        scale = 1.0 if axis.linear else math.pi / 180.0
        assert axis.unit == ("m" if axis.linear else "rad")
        assert axis.file_unit == row.get("unit", axis.file_unit)
        for name in ("min", "max", "vmax", "amax", "jmax"):
            assert getattr(axis, name) == pytest.approx(row[name] * scale), (axis.name, name)
        margin = row.get("soft_margin", 0.005 if axis.linear else 0.5)
        assert axis.soft_margin == pytest.approx(margin * scale)
        assert axis.to_file(axis.max) == pytest.approx(row["max"])
    park = doc["park"]
    for i, axis in enumerate(rig.axes):
        expected = park[axis.name] if axis.linear else math.radians(park[axis.name])
        assert rig.park[i] == pytest.approx(expected)


def test_which_axes_are_linear(ur10e: Rig, crane: Rig) -> None:
    assert ur10e.axis_names == UR10E_AXES and crane.axis_names == CRANE_AXES
    assert [a.linear for a in ur10e.axes] == [True] + [False] * 6
    assert [a.linear for a in crane.axes] == [True, False, False, True, False, False, False]
    assert ur10e.axes[0].to_file(1.25) == 1.25
    assert ur10e.axes[1].to_file(math.pi) == pytest.approx(180.0)


@pytest.mark.parametrize("path", RIG_FILES, ids=lambda p: p.name)
def test_rig_frames_and_lens_in_si(path: Path) -> None:
    rig, doc = load_rig(path), raw(path)
    np.testing.assert_allclose(rig.base[:3, 3], doc["base"]["position"])
    base_pan = doc["base"].get("rotation", {}).get("pan", 0.0)
    np.testing.assert_allclose(rig.base[:3, :3], rot_z(math.radians(base_pan)), atol=1e-12)
    cam = doc["camera"]
    np.testing.assert_allclose(rig.camera_mount[:3, 3], cam["position"])
    angles = [math.radians(cam["rotation"].get(k, 0.0)) for k in ("pan", "tilt", "roll")]
    np.testing.assert_allclose(rig.camera_mount[:3, :3], ptr_to_matrix(*angles), atol=1e-12)
    assert rig.links[rig.camera_link].name == cam["link"]
    written = {l["name"]: l for l in doc["lens"]}
    units = {"focus": "m", "iris": "f-stop", "zoom": "mm"}
    for lens in rig.lens:
        row = written[lens.name]
        assert isinstance(lens, LensAxis) and lens.unit == units[lens.name]
        assert (lens.min, lens.max, lens.vmax, lens.amax, lens.jmax, lens.default) == tuple(
            float(row[k]) for k in ("min", "max", "vmax", "amax", "jmax", "default"))
        calibration = row.get("encoder", [[row["min"], 0.0], [row["max"], 1.0]])
        np.testing.assert_allclose(lens.calibration, calibration)
        assert lens.encoder(lens.min) == pytest.approx(calibration[0][1])
        assert lens.encoder(lens.max) == pytest.approx(calibration[-1][1])


def test_rig_settings(ur10e: Rig, crane: Rig) -> None:
    doc = raw(ROOT / "rigs" / "ur10e_track.toml")
    signs = {"positive": 1.0, "negative": -1.0}
    assert dict(ur10e.configuration) == {k: signs[v] for k, v in doc["ik"]["configuration"].items()}
    assert ur10e.follow == tuple(doc["ik"]["follow"]) and crane.follow == tuple(raw(ROOT / "rigs" / "moco_crane.toml")["ik"]["follow"])
    assert ur10e.self_margin_m == doc["collision"]["self_margin"]
    crane_doc = raw(ROOT / "rigs" / "moco_crane.toml")
    assert crane.ignore_pairs == frozenset(frozenset(p) for p in crane_doc["collision"]["ignore"])
    hw = ur10e.hardware
    assert hw is not None and hw.transport == doc["hardware"]["transport"]
    assert hw.servo_rate_hz == doc["hardware"]["servo_rate_hz"] and hw.eds is None
    assert dict(hw.address) == doc["hardware"]["address"]
    assert dict(hw.counts) == {k: float(v) for k, v in doc["hardware"]["counts"].items()}


def test_urdf_and_ets_chains(ur10e: Rig, crane: Rig) -> None:
    assert [l.name for l in ur10e.links][:3] == ["track_base", "carriage", "base_link"]
    track = ur10e.links[1].joint
    assert track is not None and track.prismatic and track.direction == 0 and track.sign == 1.0
    assert ur10e.links[2].joint is None                                         # the fixed riser
    lift = next(l for l in crane.links if l.name == "boom").joint
    assert lift is not None and lift.variable == "lift" and not lift.prismatic
    assert lift.direction == 1 and lift.sign == -1.0                           # Ry(-lift)
    column = next(l for l in crane.links if l.name == "column")
    np.testing.assert_allclose(column.pre[:3, :3], np.eye(3))                  # tz(...) before Rz(rotate)
    assert column.pre[2, 3] > 0 and column.joint is not None and column.joint.direction == 2
    doc = raw(ROOT / "rigs" / "ur10e_track.toml")
    capsules = {l["name"]: l.get("capsules", []) for l in doc["link"]}
    for link in ur10e.links:
        written = capsules.get(link.name, [])
        assert len(link.capsules) == len(written)
        for capsule, row in zip(link.capsules, written):
            np.testing.assert_allclose(capsule.a, row["a"])
            np.testing.assert_allclose(capsule.b, row["b"])
            assert capsule.radius == row["radius"]
    assert len(next(l for l in ur10e.links if l.name == "shoulder_link").capsules) == 2   # multi-line array


def test_axis_table(ur10e: Rig) -> None:
    rows = ur10e.axis_table()
    assert [r["name"] for r in rows] == list(UR10E_AXES) + [f"lens.{l.name}" for l in ur10e.lens]
    track, pan = ur10e.axes[0], ur10e.axes[1]
    assert rows[0] == {"name": "track", "kind": "linear", "unit": "m", "min": track.min, "max": track.max,
                       "vmax": track.vmax, "amax": track.amax, "jmax": track.jmax,
                       "soft_margin": track.soft_margin}
    assert rows[1]["kind"] == "rotary" and rows[1]["unit"] == "rad" and rows[1]["vmax"] == pan.vmax
    focus = ur10e.lens[0]
    assert rows[len(ur10e.axes)] == {"name": "lens.focus", "kind": "lens", "unit": "m", "min": focus.min,
                                     "max": focus.max, "vmax": focus.vmax, "amax": focus.amax,
                                     "jmax": focus.jmax, "soft_margin": 0.0}
    assert len(rows) == len(ur10e.axes) + len(ur10e.lens)
    assert ur10e.lower.tolist() == [r["min"] for r in rows[:7]]
    assert ur10e.upper.tolist() == [r["max"] for r in rows[:7]]


@pytest.mark.parametrize("path", STAGE_FILES, ids=lambda p: p.name)
def test_stage_in_si(path: Path) -> None:
    stage, doc = load_stage(path), raw(path)
    margin = doc.get("margin", 0.05)
    rows = [(ZoneKind.OBSTACLE, r) for r in doc.get("obstacle", [])] + \
           [(ZoneKind.KEEPOUT, r) for r in doc.get("keepout", [])]
    assert len(stage.zones) == len(rows)
    for zone, (kind, row) in zip(stage.zones, rows):
        assert zone.name == row["name"] and zone.kind is kind
        assert zone.clearance_m == row.get("clearance", margin)
        assert zone.ignore_links == tuple(row.get("ignore_links", ())) and zone.note == row.get("note", "")
        shape = zone.shape
        pan = math.radians(row.get("rotation", {}).get("pan", 0.0))
        if row["shape"] == "box":
            assert isinstance(shape, Box)
            np.testing.assert_allclose(shape.half, np.array(row["size"]) / 2)
            np.testing.assert_allclose(shape.center, row["position"])
            np.testing.assert_allclose(shape.rotation, rot_z(pan), atol=1e-12)
        elif row["shape"] == "cylinder":
            assert isinstance(shape, Cylinder)
            assert shape.radius == row["radius"] and shape.half_height == row["height"] / 2
        elif row["shape"] == "plane":
            assert isinstance(shape, Plane)
            normal = np.array(row["normal"])
            np.testing.assert_allclose(shape.normal, normal / np.linalg.norm(normal))
    engine = doc["engine"]
    assert stage.engine_units_per_metre == engine["units_per_metre"]
    np.testing.assert_allclose(stage.engine_from_stage[:3, 3], engine["origin"])
    np.testing.assert_allclose(stage.engine_from_stage[:3, :3],
                               rot_z(math.radians(engine["rotation"]["pan"])), atol=1e-12)


@pytest.mark.parametrize("path", MOVE_FILES, ids=lambda p: p.name)
def test_move_keys_in_si(path: Path) -> None:
    loaded, doc = load_scene(path), raw(path)
    move, rig = loaded.move, loaded.rig
    assert move.name == doc["name"] and move.title == doc.get("title", doc["name"])
    assert move.rate.label == doc["fps"] and move.start.label == doc.get("start", "00:00:00:00")
    assert len(move.keys) == len(doc["key"])
    for key, row in zip(move.keys, doc["key"]):
        assert isinstance(key, Key) and key.frame == row["frame"]
        assert key.hold == row.get("hold", 0) and key.label == row.get("label", "")
        joints = row.get("joints", {})
        assert set(key.joints) == set(joints)                                   # the rest holds
        for name, value in joints.items():
            axis = rig.axes[rig.axis_index(name)]
            assert key.joints[name] == pytest.approx(value if axis.linear else math.radians(value))
        assert dict(key.lens) == {k: float(v) for k, v in row.get("lens", {}).items()}   # physical units
        cam = row.get("camera")
        assert (key.camera is None) == (cam is None)
        if cam is None:
            continue
        assert isinstance(key.camera, CameraKey)
        np.testing.assert_allclose(key.camera.position, cam["position"])
        assert key.camera.roll == pytest.approx(math.radians(cam.get("roll", 0.0)))
        if "look_at" in cam:
            np.testing.assert_allclose(key.camera.look_at, cam["look_at"])
            pan, tilt = look_at_ptr(cam["position"], cam["look_at"])
            assert (key.camera.pan, key.camera.tilt) == (pytest.approx(pan), pytest.approx(tilt))
            forward = key.camera.rotation @ np.array([0.0, 1.0, 0.0])          # the camera looks along +Y
            direction = np.subtract(cam["look_at"], cam["position"])
            np.testing.assert_allclose(forward, direction / np.linalg.norm(direction), atol=1e-12)
        else:
            assert key.camera.look_at is None
            assert key.camera.pan == pytest.approx(math.radians(cam.get("pan", 0.0)))
            assert key.camera.tilt == pytest.approx(math.radians(cam.get("tilt", 0.0)))
        np.testing.assert_allclose(key.camera.rotation,
                                   ptr_to_matrix(key.camera.pan, key.camera.tilt, key.camera.roll))


def test_angles_of_a_pan_tilt_key() -> None:
    move = load_scene(ROOT / "moves" / "illegal" / "too_fast_through_obstacle.toml").move
    cam = move.keys[0].camera
    assert cam is not None and cam.look_at is None
    assert cam.pan == pytest.approx(math.radians(-90.0)) and cam.tilt == pytest.approx(math.radians(-10.0))


def test_joint_key_degrees_become_radians() -> None:
    first = scene("crane_reveal.toml").move.keys[0]
    assert first.camera is None
    assert first.joints["rotate"] == pytest.approx(math.radians(90.0))
    assert first.joints["track"] == 1.0


# -- holds ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MOVE_FILES, ids=lambda p: p.name)
def test_hold_is_stored_and_extends_the_move(path: Path) -> None:
    move, doc = load_scene(path).move, raw(path)
    assert [k.hold for k in move.keys] == [row.get("hold", 0) for row in doc["key"]]
    last = doc["key"][-1]
    assert move.last_frame == last["frame"] + last.get("hold", 0)
    assert move.duration_s == pytest.approx(move.last_frame * move.rate.den / move.rate.num)
    assert move.timecode_at(0) == move.start.label
    assert move.timecode_at(move.last_frame) == (move.start + move.last_frame).label


def test_hold_values_of_the_orbit() -> None:
    move = scene("orbit.toml").move
    assert move.keys[0].hold > 0 and move.keys[1].hold == 0
    assert move.last_frame == move.keys[-1].frame + move.keys[-1].hold


def test_a_key_right_after_a_hold_is_legal(tmp_path: Path) -> None:
    text = (ROOT / "moves" / "orbit.toml").read_text()
    hold = raw(ROOT / "moves" / "orbit.toml")["key"][0]["hold"]
    text = re.sub(r"(?m)^frame = 60$", f"frame = {hold + 1}", text)
    text = text.replace('"../rigs/', f'"{ROOT / "rigs"}/')
    (tmp_path / "m.toml").write_text(text)
    move = load_scene(tmp_path / "m.toml").move
    assert move.keys[1].frame == move.keys[0].frame + move.keys[0].hold + 1


def test_key_line_is_its_header() -> None:
    path = ROOT / "moves" / "orbit.toml"
    text = path.read_text()
    move = load_scene(path).move
    assert [k.line for k in move.keys] == [line_containing(text, "[[key]]", i) for i in range(len(move.keys))]


# -- immutability -----------------------------------------------------------------------------------


def test_models_are_frozen(ur10e: Rig, volume: Stage) -> None:
    move = scene("orbit.toml").move
    key = move.keys[0]
    for model, field in ((ur10e, "name"), (ur10e.axes[0], "max"), (ur10e.lens[0], "max"), (move, "keys"),
                         (key, "frame"), (key.camera, "pan"), (volume, "zones"),
                         (volume.zones[0], "clearance_m"), (ur10e.hardware, "transport"),
                         (ur10e.links[1], "joint"), (ur10e.links[1].joint, "sign"),
                         (volume.zones[1].shape, "half"), (move.rate, "num"), (move.start, "frame")):
        assert dataclasses.is_dataclass(model)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(model, field, None)


def test_arrays_are_read_only(ur10e: Rig, volume: Stage) -> None:
    cam = scene("orbit.toml").move.keys[0].camera
    arrays = [ur10e.park, ur10e.base, ur10e.camera_mount, ur10e.lens[0].calibration, ur10e.links[2].pre,
              ur10e.links[2].post, ur10e.links[-1].capsules[0].a, cam.position, cam.look_at,
              volume.engine_from_stage, volume.zones[1].shape.center, volume.zones[1].shape.rotation,
              volume.zones[0].shape.normal]
    for array in arrays:
        assert isinstance(array, np.ndarray) and not array.flags.writeable
        with pytest.raises(ValueError):
            array[..., 0] = 1.0


def test_mappings_and_sequences_are_read_only(ur10e: Rig) -> None:
    crane_key = scene("crane_reveal.toml").move.keys[0]
    for mapping in (crane_key.joints, crane_key.lens, ur10e.configuration, ur10e.hardware.address,
                    ur10e.hardware.counts):
        with pytest.raises(TypeError):
            mapping["track"] = 0.0                                              # type: ignore[index]
    assert isinstance(ur10e.axes, tuple) and isinstance(ur10e.links, tuple) and isinstance(ur10e.lens, tuple)
    assert isinstance(scene("orbit.toml").move.keys, tuple)
    assert isinstance(ur10e.ignore_pairs, frozenset)


def test_loading_twice_gives_equal_values(ur10e: Rig) -> None:
    again = load_rig(ROOT / "rigs" / "ur10e_track.toml")
    assert again.axes == ur10e.axes                                             # plain frozen dataclasses
    np.testing.assert_array_equal(again.park, ur10e.park)


# -- key_lines: the line map behind every message ----------------------------------------------------


def assigned(text: str, key: str, nth: int = 0, after: str = "") -> int:
    """Line number of the ``nth`` line ``key = ...`` after the first occurrence of ``after``."""
    start = text.index(after) if after else 0
    first = text.count("\n", 0, start) + 1
    lines = text.splitlines()
    hits = [n for n, line in enumerate(lines, start=1) if n >= first and re.match(rf"{key}\s*=", line)]
    return hits[nth]


def test_key_lines_on_a_move() -> None:
    text = (ROOT / "moves" / "orbit.toml").read_text()
    lines = key_lines(text)
    assert lines["fps"] == assigned(text, "fps") and lines["rig"] == assigned(text, "rig")
    assert lines["key"] == line_containing(text, "[[key]]", 0)
    count = text.count("[[key]]")
    for i in range(count):
        camera = assigned(text, "camera", i)
        assert lines[f"key[{i}]"] == line_containing(text, "[[key]]", i)
        assert lines[f"key[{i}].frame"] == assigned(text, "frame", i)
        assert lines[f"key[{i}].camera"] == camera
        assert lines[f"key[{i}].camera.position"] == camera and lines[f"key[{i}].camera.look_at"] == camera
    assert lines["key[0].lens.zoom"] == assigned(text, "lens")
    assert lines[f"key[{count - 1}].hold"] == assigned(text, "hold", 0, after=text.split("[[key]]")[-1])


def test_key_lines_on_a_rig() -> None:
    text = (ROOT / "rigs" / "ur10e_track.toml").read_text()
    lines = key_lines(text)
    assert lines["axis[1].vmax"] == assigned(text, "vmax", 1)
    assert lines["axis[1].name"] == line_containing(text, 'name = "shoulder_pan"')
    assert lines["base.rotation.pan"] == assigned(text, "rotation")
    assert lines["hardware.address.focus"] == assigned(text, "address")
    assert lines["link[3].capsules"] == line_containing(text, 'name = "shoulder_link"') + 1
    assert lines["ik.configuration.elbow"] == assigned(text, "configuration")
    assert lines["lens[2].default"] == assigned(text, "default", after='name = "zoom"')
    assert lines["axis"] == line_containing(text, "[[axis]]")
    assert lines["park"] == line_containing(text, "[park]")
    # The second line of the multi-line capsules array names no key of its own.
    first = lines["link[3].capsules"]
    assert text.splitlines()[first].lstrip().startswith("{") and first + 1 not in lines.values()


def test_key_lines_sub_table_of_an_array_element() -> None:
    text = "[[key]]\nframe = 0\n\n[[key]]\nframe = 5\n[key.camera]\nposition = [1, 2, 3]\n\n" \
           "[[link]]\nname = 'a'\n[[link.capsules]]\nradius = 1\n[[link.capsules]]\nradius = 2\n"
    lines = key_lines(text)
    assert lines["key[1].camera"] == 6 and lines["key[1].camera.position"] == 7
    assert "key.camera" not in lines and "key.camera.position" not in lines
    assert lines["link[0].capsules[0].radius"] == 12 and lines["link[0].capsules[1].radius"] == 14
    assert lines["link[0].capsules"] == 11


def test_key_lines_skip_multiline_arrays() -> None:
    text = "[[lens]]\nname = 'focus'\nencoder = [\n  [0.45, 0.0],\n  [[1.0, 0.5]],\n  [30.0, 1.0]\n]\n" \
           "default = 3.0\n\n[[lens]]\nname = 'iris'\n"
    lines = key_lines(text)
    assert lines["lens[0].encoder"] == 3
    assert lines["lens[0].default"] == 8                    # not hidden behind a "header" [0.45, 0.0]
    assert lines["lens[1].name"] == 11                      # [[1.0, 0.5]] was not an array of tables
    assert max(lines.values()) == 11 and not any(4 <= n <= 7 for n in lines.values())


def test_key_lines_skip_multiline_strings() -> None:
    text = 'name = "m"\ndescription = """\nrig = "not a key"\n[[key]]\n"""\nrig = "r.toml"\n' \
           "notes = '''\nfps = 1 ]\n'''\nfps = \"25\"\n[[key]]\nframe = 0\n"
    lines = key_lines(text)
    assert lines["rig"] == 6 and lines["fps"] == 10
    assert lines["key[0]"] == 11 and lines["key[0].frame"] == 12 and "key[1]" not in lines


def test_key_lines_strings_and_comments_do_not_open_arrays() -> None:
    text = 'a = "[" # [ not an array\nb = \'{\'\nc = "\\"["\n[t]  # [[x]]\nd = 1\n'
    lines = key_lines(text)
    assert lines == {"a": 1, "b": 2, "c": 3, "t": 4, "t.d": 5}


def test_key_lines_dotted_and_quoted_keys() -> None:
    text = '[camera]\nrotation.tilt = 90.0\n"link" = "flange"\n\n[ ik ]\nfollow = ["track"]\n'
    lines = key_lines(text)
    assert lines["camera.rotation.tilt"] == 2 and lines["camera.link"] == 3 and lines["ik.follow"] == 6


# -- numbers at the edges of float range --------------------------------------------------------------


@pytest.mark.parametrize("normal", ["[0.0, 0.0, 1e200]", "[0.0, 0.0, 1e308]", "[3e-5, 0.0, 4e-5]",
                                    "[0, 0, 2]"])
def test_plane_normal_of_any_size_becomes_a_unit_vector(normal: str, tmp_path: Path) -> None:
    text = (ROOT / "rigs" / "stages" / "led_volume.toml").read_text()
    text = re.sub(r"(?m)^normal = .*$", f"normal = {normal}", text, count=1)
    (tmp_path / "stage.toml").write_text(text)
    floor = load_stage(tmp_path / "stage.toml").zones[0].shape
    assert isinstance(floor, Plane)
    expected = np.array(tomllib.loads(f"n = {normal}")["n"], dtype=float)
    expected = expected / np.abs(expected).max()
    np.testing.assert_allclose(floor.normal, expected / np.linalg.norm(expected))
    assert np.linalg.norm(floor.normal) == pytest.approx(1.0)


def test_key_lines_count_lines_like_toml() -> None:
    """Only \\n ends a TOML line: U+2028 or U+0085 in a comment must not shift later lines; CRLF works."""
    text = "# note\u2028more and \x85 more\nname = 1\r\n[camera]\r\nlink = 2\r\n"
    assert tomllib.loads(text) == {"name": 1, "camera": {"link": 2}}
    assert key_lines(text) == {"name": 2, "camera": 3, "camera.link": 4}


def test_error_line_after_unusual_line_breaks(tmp_path: Path) -> None:
    text = (ROOT / "rigs" / "stages" / "led_volume.toml").read_text()
    text = "# stage \u2028 notes \u2029\n" + re.sub(r"(?m)^margin = .*$", "margin = -1.0", text)
    (tmp_path / "stage.toml").write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_stage(tmp_path / "stage.toml")
    assert info.value.line == text.split("\n").index("margin = -1.0") + 1
