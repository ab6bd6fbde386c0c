"""Bad input: one readable line naming file, key path and line; exit 2 from the CLI; never a traceback.

Each case copies the shipped ``rigs/`` and ``moves/`` trees into ``tmp_path``, makes one small textual
edit, and checks the error the loader raises: its type, the file it names, the dotted key path, the
line (computed from the *edited* text, never hard-coded) and a helpful phrase.  A representative subset
also runs the real ``motionctl check`` in a subprocess and checks exit code 2, exactly one line on
stderr, no traceback, and that ``--debug`` does show one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from motionctl.errors import InputError, SpecError, TimecodeError
from motionctl.spec import load_rig, load_scene, load_stage
from motionctl.spec.chain import load_urdf

REPO = Path(__file__).resolve().parents[2]

ORBIT = "moves/orbit.toml"                       # camera keys on the UR10e track rig, 25 fps NDF
CRANE_MOVE = "moves/crane_reveal.toml"           # joint keys on the moco crane, 29.97df
FAST = "moves/illegal/too_fast_through_obstacle.toml"   # camera keys with pan/tilt
UR10E = "rigs/ur10e_track.toml"                  # URDF-based rig
CRANE = "rigs/moco_crane.toml"                   # ETS-based rig
GROUPS = "rigs/ur10e_rtde_track.toml"            # a rig on three controllers ([[hardware.group]])
STAGE = "rigs/stages/led_volume.toml"
URDF = "rigs/urdf/ur10e_track.urdf"


@dataclass(frozen=True)
class Line:
    """The ``nth`` line that assigns ``key`` (``key = ...``), after the first place ``after`` occurs.

    Edits replace such a line whole, so they do not depend on the values the shipped files hold today.
    """

    key: str
    nth: int = 0
    after: str | None = None


@dataclass(frozen=True)
class Regex:
    """The ``nth`` match of a regular expression (multi-line mode)."""

    pattern: str
    nth: int = 0


Target = str | Line | Regex     # a str is literal text that must occur exactly once


@dataclass(frozen=True)
class Case:
    """One bad input: edits to apply, the loader to call, and what the error must say.

    ``line`` is ``None`` (no line expected), a marker string (the expected line is the only line of the
    edited ``error_file`` containing it) or ``(marker, n)`` (the n-th line containing it, 0-based).
    """

    target: str
    edits: tuple[tuple[str, Target, str], ...]
    error_file: str
    key: str | None
    line: str | tuple[str, int] | None
    phrases: tuple[str, ...]
    loader: str = "scene"
    error: type[InputError] = SpecError
    cli: bool = False


def edits(file: str, old: Target | list[tuple[Target, str]],
          new: str | None) -> tuple[tuple[str, Target, str], ...]:
    """One edit (``old`` -> ``new``) or, with ``old`` a list of pairs and ``new`` None, several."""
    pairs = old if isinstance(old, list) else [(old, new)]
    return tuple((file, o, n) for o, n in pairs)


def move(old, new, key: str | None, line, *phrases: str, target: str = ORBIT, cli: bool = False) -> Case:
    return Case(target, edits(target, old, new), target, key, line, phrases, cli=cli)


def rig(old, new, key: str | None, line, *phrases: str, file: str = UR10E) -> Case:
    return Case(file, edits(file, old, new), file, key, line, phrases, loader="rig")


def stage(old, new, key: str | None, line, *phrases: str) -> Case:
    return Case(STAGE, edits(STAGE, old, new), STAGE, key, line, phrases, loader="stage")


def urdf(old, new, line, *phrases: str) -> Case:
    return Case(UR10E, edits(URDF, old, new), URDF, None, line, phrases, loader="rig")


def via_move(case: Case, target: str = ORBIT, cli: bool = True) -> Case:
    """The same bad rig/stage/URDF file, reached through a move that uses it (and checked by the CLI)."""
    return Case(target, case.edits, case.error_file, case.key, case.line, case.phrases, "scene",
                case.error, cli=cli)


CAM = "camera = { position = [0.0, -0.7, 1.5], look_at = [0.0, 2.0, 1.55] }"
UR_ADDRESS = ("address = {{ track = {track}, shoulder_pan = 2, shoulder_lift = 3, elbow = 4, wrist_1 = 5, "
              "wrist_2 = 6, wrist_3 = 7, focus = {focus}, iris = 9, zoom = 10 }}")

CASES = {
    # -- files that are missing or are not TOML --------------------------------------------------------
    "missing_move_file": Case(
        "moves/no_such_move.toml", (), "moves/no_such_move.toml", None, None, ("file not found",), cli=True),
    "move_is_a_directory": Case("moves/illegal", (), "moves/illegal", None, None, ("is a directory",)),
    "missing_rig_file": move(
        Line("rig"), 'rig = "../rigs/no_such_rig.toml"', "rig", "no_such_rig", "not found",
        "no_such_rig.toml", cli=True),
    "missing_stage_file": move(
        Line("stage"), 'stage = "../rigs/nope.toml"', "stage", "nope.toml", "not found", "nope.toml"),
    "rig_path_with_nul": move(
        Line("rig"), 'rig = "../rigs/ur10e\\u0000track.toml"', "rig", "u0000", "not found", "\\x00"),
    "toml_syntax_error": move(
        Line("frame", 1), "frame = = 60", None, "frame = = 60", "TOML syntax error", cli=True),
    "toml_duplicate_key": move(
        Line("frame", 2), "frame = 120\nframe = 121", None, "frame = 121", "TOML syntax error", "overwrite"),
    "toml_syntax_error_in_rig": via_move(rig(
        Line("vmax"), "vmax = 1.5.0", None, "vmax = 1.5.0", "TOML syntax error"), cli=False),
    "toml_bad_string_in_stage": stage(
        Line("name", after="[[keepout]]"), 'name = "actor', None, 'name = "actor', "TOML syntax error"),
    # -- unknown keys, with a suggestion ---------------------------------------------------------------
    "unknown_key_move_top": move(
        Line("title"), 'titel = "Orbit"', "titel", "titel", 'unknown key "titel"', 'did you mean "title"'),
    "unknown_key_in_key": move(
        [(Line("hold", 0), "hodl = 10")], None, "key[0].hodl", "hodl", 'did you mean "hold"'),
    "unknown_key_in_camera_look_at": move(
        Line("camera", 1), "camera = { position = [-0.6, -0.6, 1.45], look_al = [0.0, 2.0, 1.55] }",
        "key[1].camera.look_al", "look_al", 'unknown key "look_al"', 'did you mean "look_at"', cli=True),
    "unknown_key_in_camera_angles": move(
        Line("camera", 0), "camera = { position = [0.6, -0.4, 0.75], pan = -90.0, tilt = -10.0, rol = 3.0 }",
        "key[0].camera.rol", "rol = 3.0", 'did you mean "roll"', target=FAST),
    "unknown_key_in_camera_subtable": move(
        Line("camera", 2),
        "\n[key.camera]\nposition = [0.0, -0.7, 1.5]\nlook_at = [0.0, 2.0, 1.55]\nrolll = 2.0",
        "key[2].camera.rolll", "rolll", 'did you mean "roll"'),
    "unknown_lens_axis": move(
        Line("lens", 0), "lens = { focs = 3.3, zoom = 35.0 }", "key[0].lens.focs", "focs",
        'unknown lens axis "focs"', 'did you mean "focus"'),
    "unknown_joint_axis": move(
        Line("joints", 1), "joints = { track = 2.5, rotate = 80.0, lfit = 15.0 }", "key[1].joints.lfit",
        "lfit", 'unknown axis "lfit"', 'did you mean "lift"', target=CRANE_MOVE, cli=True),
    "unknown_key_rig_top": rig(Line("title"), 'tittle = "UR10e"', "tittle", "tittle", 'did you mean "title"'),
    "unknown_key_rig_axis": rig(
        Line("soft_margin"), "soft_margn = 0.02", "axis[0].soft_margn", "soft_margn",
        'did you mean "soft_margin"'),
    "unknown_key_rig_lens": rig(
        Line("encoder"), "encodr = [[0.45, 0.0], [30.0, 1.0]]", "lens[0].encodr", "encodr",
        'did you mean "encoder"'),
    "unknown_key_rig_camera": rig(Line("link"), 'lnk = "flange"', "camera.lnk", "lnk", 'did you mean "link"'),
    "unknown_key_kinematics_ets_rig": rig(
        "[base]", '[kinematics]\nurdff = "x.urdf"\n\n[base]', "kinematics.urdff", "urdff",
        'did you mean "urdf"', file=CRANE),
    "unknown_array_of_tables_rig": rig(
        '[[link]]\nname = "rail"', '[[links]]\nname = "rail"', "links", "[[links]]", 'unknown key "links"',
        'did you mean "link"', file=CRANE),
    "unknown_key_stage_top": stage(
        Line("margin"), "margni = 0.05", "margni", "margni", 'did you mean "margin"'),
    "unknown_key_stage_obstacle": stage(
        Line("note", after='name = "floor"'), 'nots = "x"', "obstacle[0].nots", "nots",
        'did you mean "note"'),
    "unknown_key_stage_engine": stage(
        Line("units_per_metre"), "units_per_meter = 100.0", "engine.units_per_meter", "units_per_meter",
        'did you mean "units_per_metre"'),
    "unknown_key_with_newline": move(
        Line("camera", 2), 'camera = { position = [0.0, -0.7, 1.5], "look\\nat" = [0.0, 2.0, 1.55] }',
        "key[2].camera.look\\nat", "look\\nat", 'unknown key "look\\nat"', cli=True),
    "stage_shape_unknown_kind": stage(
        Line("shape", after="[[keepout]]"), 'shape = "cylindr"', "keepout[0].shape", "cylindr",
        '"cylindr" is not one of', 'did you mean "cylinder"'),
    "keepout_without_clearance": stage(
        Line("clearance", after="[[keepout]]"), "", "keepout[0]", ("[[keepout]]", 0),
        'missing required key "clearance"'),
    # -- wrong types -----------------------------------------------------------------------------------
    "string_for_frame": move(
        Line("frame", 1), 'frame = "60"', "key[1].frame", 'frame = "60"',
        "expected a whole number, got a string"),
    "fractional_frame": move(
        Line("frame", 2), "frame = 120.5", "key[2].frame", "120.5", "expected a whole number"),
    "string_for_number_rig": rig(
        Line("vmax"), 'vmax = "fast"', "axis[0].vmax", '"fast"', "expected a number, got a string"),
    "bool_for_number_stage": stage(
        Line("radius", after="[[keepout]]"), "radius = true", "keepout[0].radius", "radius = true",
        "expected a number, got true/false"),
    "number_for_array": move(
        Line("camera", 2), "camera = { position = 1.5, look_at = [0.0, 2.0, 1.55] }",
        "key[2].camera.position", "position = 1.5,", "expected an array of 3 numbers, got a number"),
    "array_of_wrong_length": move(
        Line("camera", 2), "camera = { position = [0.0, -0.7], look_at = [0.0, 2.0, 1.55] }",
        "key[2].camera.position", "[0.0, -0.7]", "expected an array of 3 numbers, got 2"),
    "array_of_wrong_length_rig": rig(
        Line("position"), "position = [-3.0, -1.5, 0.0, 1.0]", "base.position", "[-3.0, -1.5, 0.0, 1.0]",
        "got 4 values"),
    "string_for_table": move(
        Line("lens"), 'lens = "35mm"', "key[0].lens", '"35mm"', "expected a table, got a string"),
    "table_for_fps": move(Line("fps"), "fps = { rate = 25 }", "fps", "rate = 25", "unknown frame rate"),
    "number_for_string": move(
        Line("title"), "title = 3", "title", "title = 3", "expected a string, got a number"),
    "bad_encoder_pairs": rig(
        Line("encoder"), "encoder = [[0.45, 0.0], [30.0]]", "lens[0].encoder", "[30.0]]",
        "[value, encoder 0..1] pairs"),
    "config_value_is_array": rig(
        Line("configuration"), 'configuration = { elbow = [1], wrist_2 = "negative" }',
        "ik.configuration.elbow", "elbow = [1]", 'expected "positive" or "negative"'),
    "config_value_is_table": rig(
        Line("configuration"), "configuration = { elbow = { up = true } }", "ik.configuration.elbow",
        "up = true", 'expected "positive" or "negative"'),
    # -- units -----------------------------------------------------------------------------------------
    "deg_on_prismatic_track": via_move(rig(
        Line("unit"), 'unit = "deg"', "axis[0].unit", ('unit = "deg"', 0), "prismatic",
        'its unit is "m", not "deg"')),
    "m_on_revolute_joint": rig(
        'name = "shoulder_pan"\nunit = "deg"', 'name = "shoulder_pan"\nunit = "m"', "axis[1].unit",
        ('unit = "m"', 1), "revolute", 'its unit is "deg", not "m"'),
    "wrong_lens_unit": rig(
        'name = "focus"', 'name = "focus"\nunit = "ft"', "lens[0].unit", 'unit = "ft"',
        'focus is measured in "m", not "ft"'),
    # -- NaN and infinity ------------------------------------------------------------------------------
    "nan_in_camera_position": move(
        Line("camera", 2), "camera = { position = [nan, -0.7, 1.5], look_at = [0, 2, 1] }",
        "key[2].camera.position", "nan", "must be a finite number"),
    "inf_in_look_at": move(
        Line("camera", 4), "camera = { position = [1.1, -0.4, 1.4], look_at = [0.0, inf, 1.5] }",
        "key[4].camera.look_at", "inf", "must be a finite number"),
    "nan_in_joints": move(
        Line("joints", 1), "joints = { track = nan, rotate = 80.0 }", "key[1].joints.track", "track = nan",
        "must be a finite number", target=CRANE_MOVE),
    "nan_in_move_lens": move(
        Line("lens"), "lens = { focus = 3.0, zoom = nan }", "key[0].lens.zoom", "zoom = nan",
        "must be a finite number"),
    "inf_in_axis_vmax": rig(
        Line("vmax", 1), "vmax = inf", "axis[1].vmax", "vmax = inf", "must be a finite number"),
    "minus_inf_axis_min": rig(Line("min"), "min = -inf", "axis[0].min", "-inf", "must be a finite number"),
    "inf_in_rig_lens": rig(
        Line("max", after='name = "focus"'), "max = inf", "lens[0].max", "max = inf",
        "must be a finite number"),
    "nan_in_encoder": rig(
        Line("encoder"), "encoder = [[0.45, 0.0], [0.6, nan], [30.0, 1.0]]", "lens[0].encoder", "nan]",
        "must be a finite number"),
    "nan_in_park": rig(
        Line("elbow", after="[park]"), "elbow = nan", "park.elbow", "elbow = nan", "must be a finite number"),
    "nan_in_rotation": rig(
        Line("rotation"), "rotation = { pan = nan }", "base.rotation.pan", "pan = nan",
        "must be a finite number"),
    "nan_in_capsule": rig(
        Line("capsules"), "capsules = [{ a = [-0.3, 0.0, 0.08], b = [6.3, nan, 0.08], radius = 0.1 }]",
        "link[0].capsules[0].b", "nan", "must be a finite number"),
    "inf_in_stage": stage(
        Line("radius", after="[[keepout]]"), "radius = inf", "keepout[0].radius", "radius = inf",
        "must be a finite number"),
    "huge_in_ets": rig(
        Line("ets", after='name = "column"'), 'ets = "tz(1e999) Rz(rotate)"', "link[2].ets", "1e999",
        "not finite", file=CRANE),
    # -- frames ----------------------------------------------------------------------------------------
    "frames_out_of_order": move(
        Line("frame", 3), "frame = 7", "key[3].frame", "frame = 7", "out of order", cli=True),
    "frame_duplicated": move(
        [(Line("frame", 2), "frame = 130"), (Line("frame", 3), "frame = 130")], None, "key[3].frame",
        ("frame = 130", 1), "frame 130 is keyed twice (key 2 and key 3)"),
    "frame_inside_hold": move(
        [(Line("hold", 0), "hold = 10"), (Line("frame", 1), "frame = 10")], None, "key[1].frame",
        "frame = 10", "inside the hold of the key at frame 0", "held until 10"),
    "first_key_not_at_zero": move(
        Line("frame"), "frame = 5", "key[0].frame", "frame = 5", "first key must be at frame 0"),
    "negative_frame": move(Line("frame", 2), "frame = -120", "key[2].frame", "-120", "must be >= 0"),
    "negative_hold": move(Line("hold"), "hold = -1", "key[0].hold", "hold = -1", "must be >= 0"),
    "frame_beyond_a_day": move(
        [(Line("fps"), 'fps = "25"'), (Line("frame", 4), "frame = 100000000000000000")], None, "key[4].frame",
        "100000000000000000", "the move must be shorter than 24 hours (2160000 frames at 25)"),
    "hold_beyond_a_day": move(
        Line("hold", 1), "hold = 2160000", "key[4].hold", "hold = 2160000",
        "the move must be shorter than 24 hours"),
    "misspelt_key_table": move(
        "[[key]]\nframe = 0", "[[kee]]\nframe = 0", "kee", "[[kee]]", 'unknown key "kee"',
        'did you mean "key"'),
    "first_key_partial_pose": move(
        Line("joints"), "joints = { track = 1.0, rotate = 90.0, lift = -20.0, extend = 0.0, pan = 0.0, tilt = -10.0 }",
        "key[0].camera", ("[[key]]", 0), 'missing "roll"', target=CRANE_MOVE),
    # -- frame rate and timecode -----------------------------------------------------------------------
    "fps_29_98": move(
        Line("fps"), 'fps = "29.98"', "fps", "29.98", "unknown frame rate '29.98'", "valid rates", cli=True),
    "fps_120": move(Line("fps"), 'fps = "120"', "fps", 'fps = "120"', "unknown frame rate '120'"),
    "fps_integer_23": move(Line("fps"), "fps = 23", "fps", "fps = 23", "unknown frame rate 23"),
    "fps_missing": move(Line("fps"), "", None, None, 'missing required key "fps"'),
    "start_dropped_df_label": move(
        [(Line("fps"), 'fps = "29.97df"'), (Line("start"), 'start = "00:01:00;00"')], None, "start",
        "00:01:00;00", "does not exist at 29.97df", target=CRANE_MOVE, cli=True),
    "start_malformed": move(Line("start"), 'start = "10:00:00"', "start", "10:00:00", "malformed timecode"),
    "start_df_separator_on_ndf": move(
        [(Line("fps"), 'fps = "25"'), (Line("start"), 'start = "10:00:00;00"')], None, "start", "10:00:00;00",
        "drop-frame separator"),
    "start_frames_out_of_range": move(
        [(Line("fps"), 'fps = "25"'), (Line("start"), 'start = "10:00:00:25"')], None, "start", "10:00:00:25",
        "frames must be 00-24"),
    # -- camera poses ----------------------------------------------------------------------------------
    "look_at_equals_position": move(
        Line("camera", 2), "camera = { position = [0.0, -0.7, 1.5], look_at = [0.0, -0.7, 1.5] }",
        "key[2].camera.look_at", "look_at = [0.0, -0.7, 1.5]", "look-at target is at the camera position"),
    "look_at_and_pan": move(
        Line("camera", 2), CAM[:-2] + ", pan = 10.0 }", "key[2].camera.look_at", "pan = 10.0",
        "either look_at or pan/tilt, not both"),
    "look_at_straight_up": move(
        Line("camera", 2), "camera = { position = [0.0, -0.7, 1.5], look_at = [0.0, -0.7, 9.0] }",
        "key[2].camera.look_at", "9.0", "straight above or below"),
    "camera_without_orientation": move(
        Line("camera", 2), "camera = { position = [0.0, -0.7, 1.5] }", "key[2].camera", "[0.0, -0.7, 1.5] }",
        "a camera needs look_at"),
    "tilt_beyond_90": move(
        Line("camera", 1), "camera = { position = [2.0, -0.4, 0.75], pan = -90.0, tilt = -95.0 }",
        "key[1].camera.tilt", "-95.0", "must be >= -90", target=FAST),
    "camera_key_pins_non_follow_axis": move(
        Line("camera", 1), CAM + "\njoints = { elbow = 90.0 }", "key[1].joints.elbow", "elbow = 90.0",
        "a camera key can only pin follow axes (track", '"elbow" is solved from the camera pose'),
    # -- limits ----------------------------------------------------------------------------------------
    "zero_vmax": rig(Line("vmax"), "vmax = 0", "axis[0].vmax", "vmax = 0", "must be greater than 0"),
    "negative_jmax": rig(
        Line("jmax"), "jmax = -10.0", "axis[0].jmax", "jmax = -10.0", "must be greater than 0"),
    "zero_lens_vmax": rig(
        Line("vmax", after='name = "focus"'), "vmax = 0.0", "lens[0].vmax", "vmax = 0.0",
        "must be greater than 0"),
    "negative_lens_min": rig(
        Line("min", after='name = "focus"'), "min = -0.45", "lens[0].min", "-0.45", "must be greater than 0"),
    "max_below_min": rig(
        [(Line("min"), "min = 0.0"), (Line("max"), "max = -1.0")], None, "axis[0].max", "max = -1.0",
        "max (-1) must be greater than min (0)"),
    "max_equals_min_lens": rig(
        [(Line("min", after='name = "zoom"'), "min = 24.0"),
         (Line("max", after='name = "zoom"'), "max = 24.0")],
        None, "lens[2].max", "max = 24.0", "max (24) must be greater than min (24)"),
    "soft_margin_too_big": rig(
        Line("soft_margin"), "soft_margin = 100.0", "axis[0].soft_margin", "soft_margin = 100.0",
        "no range between min and max"),
    "lens_default_outside_range": rig(
        Line("default", after='name = "zoom"'), "default = 1000.0", "lens[2].default", "1000.0",
        "must be <="),
    "axis_range_beyond_urdf": rig(
        Line("max"), "max = 700.0", "axis[0].max", "max = 700.0",
        'axis "track" range exceeds the URDF joint limits ['),
    "stage_box_zero_size": stage(
        Line("size", after='name = "stunt_lane"'), "size = [6.0, 0.0, 2.2]", "keepout[1].size",
        "[6.0, 0.0, 2.2]", "every size must be greater than 0"),
    "stage_plane_zero_normal": stage(
        Line("normal"), "normal = [0.0, 0.0, 0.0]", "obstacle[0].normal", "normal =",
        "must not be the zero vector"),
    "stage_negative_margin": stage(
        Line("margin"), "margin = -0.05", "margin", "margin = -0.05", "must be >= 0"),
    # -- names and structure ---------------------------------------------------------------------------
    "duplicate_axis": rig(
        'name = "wrist_3"', 'name = "wrist_2"', "axis[6].name", ('name = "wrist_2"', 1),
        'axis "wrist_2" is defined twice'),
    "duplicate_lens": rig(
        'name = "iris"', 'name = "zoom"', "lens[2].name", ('name = "zoom"', 1),
        'lens axis "zoom" is defined twice', file=CRANE),
    "duplicate_link": rig(
        'name = "head_roll"', 'name = "head_tilt"', "link[7].name", ('name = "head_tilt"', 1),
        'duplicate link name "head_tilt"', file=CRANE),
    "duplicate_zone": stage(
        'name = "stunt_lane"', 'name = "actor_mark_a"', "keepout[1].name", ('name = "actor_mark_a"', 1),
        '"actor_mark_a" is used twice'),
    "axis_not_in_chain": rig(
        'name = "elbow"', 'name = "elbw"', "axis[3].name", "elbw", 'has no joint "elbw"',
        'did you mean "elbow"'),
    "joint_without_axis": rig(
        Regex('^\\[\\[axis\\]\\]\\nname = "roll"\\n(?:[^\\[\\n].*\\n|\\n)*'), "", "axis", ("[[axis]]", 0),
        'joint "roll" has no [[axis]]', file=CRANE),
    "joint_variable_used_twice": rig(
        Line("ets", after='name = "head_roll"'), 'ets = "Rx(pan)"', "link[7].ets", "Rx(pan)",
        'joint "pan" already drives link "head_pan"', file=CRANE),
    "ets_garbage_term": rig(
        Line("ets", after='name = "column"'), 'ets = "tz(0.6) Qz(rotate)"', "link[2].ets", "Qz(rotate)",
        'bad ETS term "Qz(rotate)"', file=CRANE),
    "ets_garbage_argument": rig(
        Line("ets", after='name = "head_pan"'), 'ets = "tx(3.0) Rz(pan + 1)"', "link[5].ets", "pan + 1",
        'bad ETS argument "pan + 1"', file=CRANE),
    "ets_two_joints_in_one_link": rig(
        Line("ets", after='name = "boom"'), 'ets = "tz(1.0) Ry(-lift) Rx(swing)"', "link[3].ets", "Rx(swing)",
        'link "boom" has two joints (lift, swing)', "split it into two links", file=CRANE),
    "ets_empty": rig(
        Line("ets", after='name = "head_roll"'), 'ets = ""', "link[7].ets", 'ets = ""', "empty ETS",
        file=CRANE),
    "ets_link_in_urdf_rig": rig(
        'name = "flange"', 'name = "flange"\nets = "Rz(q)"', "link[9].ets", 'ets = "Rz(q)"',
        "links come from the URDF"),
    "camera_link_unknown": rig(
        Line("link"), 'link = "flang"', "camera.link", 'link = "flang"', 'no link "flang"',
        'did you mean "flange"'),
    "park_unknown_axis": rig(
        Line("elbow", after="[park]"), "elbo = 145.0", "park.elbo", "elbo = 145.0", 'unknown axis "elbo"',
        'did you mean "elbow"'),
    "park_missing_axis": rig(Line("wrist_3", after="[park]"), "", "park", "[park]", 'missing axis "wrist_3"'),
    "park_outside_configuration": rig(
        Line("elbow", after="[park]"), "elbow = -145.0", "park.elbow", "elbow = -145.0",
        "outside its pinned configuration"),
    "follow_unknown_axis": rig(
        Line("follow"), 'follow = ["trak"]', "ik.follow", "trak", 'unknown axis "trak"',
        'did you mean "track"'),
    "collision_ignore_unknown_link": rig(
        Line("ignore", after="[collision]"), 'ignore = [["bom", "head_tilt"]]', "collision.ignore", "bom",
        'no link "bom"', 'did you mean "boom"', file=CRANE),
    "hardware_address_duplicated": rig(
        Line("address"), UR_ADDRESS.format(track=1, focus=7), "hardware.address.focus", "address = {",
        "address 7 is used twice"),
    "hardware_address_out_of_range": rig(
        Line("address"), UR_ADDRESS.format(track=300, focus=8), "hardware.address.track", "track = 300",
        "drive address 1..127"),
    "hardware_address_missing": rig(
        Line("address"),
        "address = { track = 1, rotate = 2, lift = 3, extend = 4, pan = 5, tilt = 6, focus = 8, zoom = 9, iris = 10 }",
        "hardware.address", "address = {", 'axis "roll" has no drive address', file=CRANE),
    "hardware_transport_not_url": rig(
        Line("transport"), 'transport = "can0"', "hardware.transport", "can0", "not a transport URL"),
    "hardware_group_axis_twice": rig(
        "address = { track = 7 }", "address = { track = 7, elbow = 9 }", "hardware.group[1].address",
        "address = { track = 7, elbow = 9 }", 'axis "elbow" is already in group "arm"', file=GROUPS),
    "hardware_group_axis_in_none": rig(
        "wrist_2 = 5, wrist_3 = 6 }", "wrist_2 = 5 }", "hardware.group", ("[[hardware.group]]", 1),
        'axis "wrist_3" is in no [[hardware.group]]', file=GROUPS),
    "hardware_group_unknown_key": rig(
        'name = "lens"', 'name = "lens"\nspeed = 3', "hardware.group[2].speed", "speed = 3",
        'unknown key "speed"', file=GROUPS),
    "hardware_servo_rate": rig(
        Line("servo_rate_hz"), "servo_rate_hz = 400", "hardware.servo_rate_hz", "servo_rate_hz = 400",
        "servo rate must be 250, 500 or 1000 Hz"),
    # -- URDF ------------------------------------------------------------------------------------------
    "rig_points_at_missing_urdf": via_move(rig(
        Line("urdf"), 'urdf = "urdf/no_such.urdf"', "kinematics.urdf", "no_such.urdf", "not found",
        "no_such.urdf")),
    "urdf_tip_unknown": rig(
        Line("tip"), 'tip = "flang"', "kinematics.tip", 'tip = "flang"', 'URDF has no link "flang"',
        'did you mean "flange"'),
    "urdf_malformed_xml": via_move(urdf(
        '<child link="carriage"/>', '<child link="carriage">', ("</joint>", 0), "XML error",
        "mismatched tag")),
    "urdf_not_well_formed": urdf(
        '<link name="carriage"/>', '<link name="carriage & co"/>', "carriage & co", "XML error",
        "not well-formed"),
    "urdf_unknown_encoding": urdf(
        '<?xml version="1.0"?>', '<?xml version="1.0" encoding="no-such-codec"?>', "no-such-codec",
        "XML error", "encoding"),
    "urdf_wrong_root": urdf(
        [(Regex(r"<robot\b"), "<robt"), (Regex(r"</robot>"), "</robt>")], None, "<robt",
        "expected a <robot> root element, found <robt>"),
    "urdf_nan_limit": urdf(
        Regex('lower="[^"]*"'), 'lower="nan"', 'lower="nan"', '<limit lower="nan">', "not a finite number"),
    "urdf_text_limit": urdf(
        Regex('lower="[^"]*"'), 'lower="zero"', 'lower="zero"', '<limit lower="zero">', "is not a number"),
    "urdf_bad_origin": urdf(
        Regex('<origin xyz="[^"]*"'), '<origin xyz="0 0 abc"', "0 0 abc", "expected three finite numbers"),
    "urdf_skew_axis": urdf(
        Regex('<axis xyz="[^"]*"'), '<axis xyz="1 1 0"', '"1 1 0"', "axis must be along x, y or z"),
    "urdf_unsupported_joint": urdf(
        'type="prismatic"', 'type="floating"', "floating", 'type "floating" is not supported'),
    "urdf_joint_without_parent": urdf(Regex("<parent [^>]*>"), "", ("<joint ", 0), "needs <parent link=...>"),
}

LOADERS = {"scene": load_scene, "rig": load_rig, "stage": load_stage}


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the shipped rigs/ and moves/, and the working directory for the test."""
    shutil.copytree(REPO / "rigs", tmp_path / "rigs")
    shutil.copytree(REPO / "moves", tmp_path / "moves")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def replace(text: str, old: Target, new: str) -> str:
    if isinstance(old, str):
        assert text.count(old) == 1, f"edit target {old!r} must occur exactly once"
        start, end = text.index(old), text.index(old) + len(old)
    else:
        offset = 0
        if isinstance(old, Line):
            if old.after is not None:
                assert old.after in text, f"{old.after!r} not found"
                offset = text.index(old.after)
            pattern, nth = rf"^{re.escape(old.key)}\s*=.*$", old.nth
        else:
            pattern, nth = old.pattern, old.nth
        found = list(re.compile(pattern, re.MULTILINE).finditer(text, offset))
        assert len(found) > nth, f"edit target {old} not found"
        start, end = found[nth].span()
    return text[:start] + new + text[end:]


def apply(case: Case, root: Path) -> None:
    for file, old, new in case.edits:
        path = root / file
        path.write_text(replace(path.read_text(encoding="utf-8"), old, new), encoding="utf-8")


def expected_line(case: Case, root: Path) -> int | None:
    if case.line is None:
        return None
    marker, nth = (case.line, 0) if isinstance(case.line, str) else case.line
    lines = (root / case.error_file).read_text(encoding="utf-8").split("\n")
    found = [number for number, text in enumerate(lines, start=1) if marker in text]
    if isinstance(case.line, str):
        assert len(found) == 1, f"line marker {marker!r} must occur on exactly one line, found {found}"
    return found[nth]


def raised(case: Case, root: Path) -> InputError:
    apply(case, root)
    with pytest.raises(InputError) as info:
        LOADERS[case.loader](case.target)
    return info.value


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_names_file_key_and_line(case: Case, tree: Path) -> None:
    exc = raised(case, tree)
    text = str(exc)
    assert isinstance(exc, case.error), f"{type(exc).__name__}: {text}"
    assert exc.file is not None and Path(exc.file).resolve() == (tree / case.error_file).resolve(), text
    assert exc.key == case.key, text
    assert exc.line == expected_line(case, tree), text
    for phrase in case.phrases:
        assert phrase in text, f"{phrase!r} not in {text!r}"
    assert len(text.splitlines()) == 1 and "\n" not in text and "\r" not in text, repr(text)
    where = exc.file + (f":{exc.line}" if exc.line else "") + ": " + (f"{exc.key}: " if exc.key else "")
    assert text.startswith(where), text


REQUIRED = """missing_move_file missing_rig_file toml_syntax_error unknown_key_move_top
    unknown_key_in_camera_look_at unknown_lens_axis unknown_key_rig_axis string_for_number_rig
    number_for_array array_of_wrong_length deg_on_prismatic_track m_on_revolute_joint
    nan_in_camera_position inf_in_axis_vmax nan_in_move_lens frames_out_of_order frame_duplicated
    frame_inside_hold first_key_not_at_zero
    unknown_joint_axis rig_points_at_missing_urdf urdf_malformed_xml fps_29_98 fps_120 fps_integer_23
    start_dropped_df_label look_at_equals_position look_at_and_pan zero_vmax max_below_min
    stage_shape_unknown_kind keepout_without_clearance duplicate_axis ets_garbage_term
    ets_two_joints_in_one_link camera_key_pins_non_follow_axis hardware_address_duplicated""".split()


def test_cases_cover_the_requirement() -> None:
    """A tripwire: every kind of bad input the requirement names keeps its case, and the CLI runs several."""
    assert sorted(set(REQUIRED) - set(CASES)) == []
    assert sum(case.cli for case in CASES.values()) >= 8


# -- input that cannot be written as a text edit ---------------------------------------------------


def test_move_that_is_not_utf8(tree: Path) -> None:
    (tree / ORBIT).write_bytes(b'name = "orbit"\ntitle = "\xff\xfe"\n')
    with pytest.raises(SpecError) as info:
        load_scene(ORBIT)
    assert str(info.value) == f"{ORBIT}: not UTF-8 text (byte 24)"


def test_empty_move_file(tree: Path) -> None:
    (tree / ORBIT).write_text("", encoding="utf-8")
    with pytest.raises(SpecError, match='missing required key "rig"'):
        load_scene(ORBIT)


def test_urdf_that_is_empty(tree: Path) -> None:
    (tree / URDF).write_text("", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_rig(UR10E)
    assert Path(info.value.file).resolve() == (tree / URDF).resolve()
    assert "XML error" in str(info.value)


def test_urdf_loader_missing_file(tree: Path) -> None:
    with pytest.raises(SpecError, match="URDF file not found"):
        load_urdf(tree / "rigs/urdf/none.urdf", "rigs/urdf/none.urdf", "flange")


def test_urdf_loader_path_with_nul(tree: Path) -> None:
    with pytest.raises(SpecError):
        load_urdf(Path("rigs/urdf/a\0b.urdf"), "rigs/urdf/a\\0b.urdf", "flange")


@pytest.mark.parametrize("loader", [load_scene, load_rig, load_stage])
def test_path_with_nul(tree: Path, loader) -> None:
    with pytest.raises(SpecError):
        loader("moves/a\0b.toml")


def test_timecode_error_is_an_input_error(tree: Path) -> None:
    """Rate and timecode errors in a move are reported as SpecErrors on the key (one hierarchy)."""
    assert issubclass(TimecodeError, InputError) and issubclass(SpecError, InputError)
    case = CASES["fps_29_98"]
    exc = raised(case, tree)
    assert isinstance(exc, SpecError) and exc.key == "fps"


# -- the real command line -------------------------------------------------------------------------
# Each run is a fresh interpreter (about a second to import the planner), so all of them are started
# together, each in its own edited copy of the tree, and every test then waits for its own.

CLI_CASES = {name: case for name, case in CASES.items() if case.cli}
DEBUG_CASES = ("missing_rig_file", "urdf_malformed_xml")


def _start(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "motionctl", *args], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory):
    """name -> (tree, running process): every CLI case, the --debug runs and a mixed good/bad run."""
    runs: dict[str, tuple[Path, subprocess.Popen[str]]] = {}

    def start(name: str, case: Case, *args: str) -> None:
        root = tmp_path_factory.mktemp(name)
        shutil.copytree(REPO / "rigs", root / "rigs")
        shutil.copytree(REPO / "moves", root / "moves")
        apply(case, root)
        runs[name] = (root, _start(root, *args))

    for name, case in CLI_CASES.items():
        start(name, case, "check", case.target)
    for name in DEBUG_CASES:
        start(f"debug-{name}", CASES[name], "--debug", "check", CASES[name].target)
    start("mixed", CASES["frames_out_of_order"], "check", "moves/push_in.toml", ORBIT)
    yield runs
    for _, process in runs.values():
        if process.poll() is None:
            process.kill()
        process.communicate()


def finished(runs, name: str) -> tuple[Path, int, str, str]:
    root, process = runs[name]
    stdout, stderr = process.communicate(timeout=300)
    return root, process.returncode, stdout, stderr


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_bad_input_is_one_line_and_exit_2(name: str, cli_runs, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CLI_CASES[name]
    assert case.loader == "scene"
    root, code, stdout, stderr = finished(cli_runs, name)
    monkeypatch.chdir(root)
    with pytest.raises(InputError) as info:       # the same error, in process, for the exact text
        load_scene(case.target)
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines() == [f"motionctl: error: {info.value}"]
    assert stdout == ""


def test_cli_bad_input_among_good_moves_still_exit_2(cli_runs) -> None:
    """One bad file among good ones: the good one is reported, the bad one is one line, exit 2."""
    _, code, stdout, stderr = finished(cli_runs, "mixed")
    assert code == 2
    assert len(stderr.splitlines()) == 1 and "out of order" in stderr
    assert "Traceback" not in stderr
    assert "push-in" in stdout


@pytest.mark.parametrize("name", DEBUG_CASES)
def test_cli_debug_shows_the_traceback(name: str, cli_runs) -> None:
    _, code, _, stderr = finished(cli_runs, f"debug-{name}")
    assert code != 0
    assert "Traceback (most recent call last)" in stderr
    assert "motionctl.errors.SpecError" in stderr
