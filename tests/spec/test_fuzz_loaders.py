"""Fuzzing every loader: random bytes and mutated shipped files raise only motionctl's own errors.

Whatever a file holds, a loader either returns a valid model or raises an
:class:`~motionctl.errors.InputError` whose message is one line and names the file.  Anything else
(``TypeError``, ``ValueError``, ``RecursionError``, ...) would reach the user as a traceback or an
"internal error", so it is a bug.  Models that do load are checked for non-finite numbers, which
the loaders promise never to let through.

Deterministic (``derandomize``) and bounded: the whole file runs in well under a minute.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motionctl.errors import InputError, MotionctlError
from motionctl.spec import Move, Rig, Scene, Stage, load_move, load_rig, load_scene, load_stage
from motionctl.spec.chain import load_urdf

ROOT = Path(__file__).resolve().parents[2]

FUZZ = settings(derandomize=True, database=None, max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MUTANTS = settings(FUZZ, max_examples=120)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of rigs/ and moves/ in which the fuzzed files are written (so relative paths resolve)."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(ROOT / "rigs", root / "rigs")
    shutil.copytree(ROOT / "moves", root / "moves")
    return root


@pytest.fixture(scope="module")
def shipped_rig() -> Rig:
    return load_rig(ROOT / "rigs" / "ur10e_track.toml")


# -- what a loader may do ---------------------------------------------------------------------------


def finite(array) -> bool:
    return bool(np.all(np.isfinite(np.asarray(array, dtype=float))))


def check_rig(rig: Rig) -> None:
    for axis in rig.axes:
        assert all(math.isfinite(v) for v in (axis.min, axis.max, axis.vmax, axis.amax, axis.jmax))
        assert axis.min < axis.max and axis.vmax > 0 and axis.amax > 0 and axis.jmax > 0
    for lens in rig.lens:
        assert finite([lens.min, lens.max, lens.vmax, lens.amax, lens.jmax, lens.default])
        assert finite(lens.calibration)
    assert finite(rig.park) and finite(rig.base) and finite(rig.camera_mount)
    for link in rig.links:
        assert finite(link.pre) and finite(link.post)
        assert all(finite(c.a) and finite(c.b) and math.isfinite(c.radius) for c in link.capsules)


def check_stage(stage: Stage) -> None:
    assert finite(stage.engine_from_stage) and math.isfinite(stage.engine_units_per_metre)
    for zone in stage.zones:
        assert math.isfinite(zone.clearance_m) and zone.clearance_m >= 0
        for name in ("center", "rotation", "half", "a", "b", "point", "normal", "radius", "half_height"):
            if hasattr(zone.shape, name):
                assert finite(getattr(zone.shape, name)), (zone.name, name)
        if hasattr(zone.shape, "normal"):
            assert np.linalg.norm(zone.shape.normal) == pytest.approx(1.0)


def check_move(move: Move) -> None:
    frames = [k.frame for k in move.keys]
    holds = [k.hold for k in move.keys]
    assert frames[0] == 0 and all(b > a + hold for a, b, hold in zip(frames, frames[1:], holds))
    for key in move.keys:
        assert all(math.isfinite(v) for v in key.joints.values())
        assert all(math.isfinite(v) for v in key.lens.values())
        if key.camera is not None:
            assert finite(key.camera.position) and finite([key.camera.pan, key.camera.tilt, key.camera.roll])


def check_loaded(value: object) -> None:
    if isinstance(value, Scene):
        check_move(value.move)
        check_rig(value.rig)
        if value.stage is not None:
            check_stage(value.stage)
    elif isinstance(value, Move):
        check_move(value)
    elif isinstance(value, Rig):
        check_rig(value)
    elif isinstance(value, Stage):
        check_stage(value)


def only_own_errors(load, path: Path) -> bool:
    """Call ``load(path)``: it must return a sane model or raise a one-line InputError (-> True).

    Warnings (numpy's "overflow encountered" above all) count as failures: on the command line they
    are extra lines on stderr.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            value = load(path)
    except InputError as exc:
        message = str(exc)
        assert len(message.splitlines()) == 1 and "\n" not in message, repr(message)
        assert exc.file, message
        return True
    except MotionctlError as exc:  # pragma: no cover - loaders only report bad input
        pytest.fail(f"a loader raised {type(exc).__name__} rather than an InputError: {exc}")
    check_loaded(value)
    return False


# -- random bytes -------------------------------------------------------------------------------------

TOMLISH = st.text(alphabet=st.sampled_from(list('[]{}=.,"\'#\n \t-+_:;0123456789abcefinkrtxyz\\<>/')),
                  max_size=400)
random_bytes = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=300).map(lambda t: t.encode("utf-8")),
    TOMLISH.map(lambda t: t.encode("utf-8")),
    st.binary(max_size=200).map(lambda b: b'<?xml version="1.0"?>\n<robot name="r">' + b),
    st.tuples(st.sampled_from(["utf-8", "UTF-16", "latin-1", "ascii", "no-such-codec", "", "utf-32",
                               "cp037"]), st.binary(max_size=100)).map(
        lambda p: b'<?xml version="1.0" encoding="' + p[0].encode() + b'"?>\n<robot name="r">' + p[1]),
)


def loaders(work: Path, rig: Rig) -> dict[str, tuple[Path, object]]:
    """name -> (where to write the file, how to load it)."""
    return {
        "load_rig": (work / "rigs" / "_fuzz.toml", load_rig),
        "load_stage": (work / "rigs" / "stages" / "_fuzz.toml", load_stage),
        "load_move": (work / "moves" / "_fuzz.toml", lambda p: load_move(p, rig)),
        "load_move_own_rig": (work / "moves" / "_fuzz.toml", load_move),
        "load_scene": (work / "moves" / "_fuzz.toml", load_scene),
        "load_urdf": (work / "rigs" / "urdf" / "_fuzz.urdf", lambda p: load_urdf(p, str(p), "flange")),
    }


LOADER_NAMES = ["load_rig", "load_stage", "load_move", "load_move_own_rig", "load_scene", "load_urdf"]


@pytest.mark.parametrize("name", LOADER_NAMES)
def test_random_bytes(name: str, work: Path, shipped_rig: Rig) -> None:
    path, load = loaders(work, shipped_rig)[name]

    @FUZZ
    @given(data=random_bytes)
    def fuzz(data: bytes) -> None:
        path.write_bytes(data)
        only_own_errors(load, path)

    fuzz()


# -- mutated shipped files -----------------------------------------------------------------------------

NUMBER = re.compile(r"(?<![\w.])[+-]?\d+(\.\d+)?([eE][+-]?\d+)?(?![\w.])")
VALUE = re.compile(r"=\s*")
ATTRIBUTE = re.compile(r'="([^"]*)"')
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

special_numbers = st.sampled_from(["nan", "-nan", "inf", "-inf", "+inf", "1e308", "-1e308", "1e-320", "0",
                                   "-0.0", "-1", "1e30", "99999999999999999999999", "0.0", "-360", "1e999"])


def toml_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


numbers = st.one_of(special_numbers, st.floats().map(toml_float), st.integers(-10**20, 10**20).map(str))
values = st.one_of(
    numbers,
    st.sampled_from(['"text"', '""', "[]", "[1, 2]", "[1.0, 2.0, 3.0, 4.0]", "[[1, 2], [3]]", "true", "false",
                     "{}", "{ x = 1 }", '"\\u0000"', '"../x.toml"', '"a\\nb"', "1979-05-27", "07:32:00",
                     '"29.97df"', '"00:00:00;00"', '[nan, inf, -inf]', '["track", "track"]', '"Rz(q) Rx(q)"',
                     '"track"', '"flange"', '"box"', '"positive"', '{ pan = 1e308 }']),
    st.text(max_size=12).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
)
attribute_texts = st.one_of(numbers, st.sampled_from(["", "1 0", "0 0 1", "1 1 0", "x y z", "nan nan nan",
                                                      "flange", "track", "floating", "fixed", "prismatic",
                                                      "1e999 0 0", "-1 0 0"]))
inserted = st.text(alphabet=st.one_of(st.sampled_from(list('[]{}="\'#\n,.\\<>/&')),
                                      st.characters(codec="utf-8")), max_size=10)


def value_end(text: str, start: int) -> int:
    """End of the TOML value starting at ``start`` (a bracketed value to its match on the same line)."""
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    if start < line_end and text[start] in "[{":
        depth = 0
        for i in range(start, line_end):
            depth += text[i] in "[{"
            depth -= text[i] in "]}"
            if depth == 0:
                return i + 1
        return line_end
    for i in range(start, line_end):
        if text[i] in ",}]":
            return i
    return line_end


def _pick(draw, matches: list[re.Match]) -> re.Match | None:
    return draw(st.sampled_from(matches)) if matches else None


def delete_line(draw, text: str) -> str:
    lines = text.split("\n")
    del lines[draw(st.integers(0, len(lines) - 1))]
    return "\n".join(lines)


def duplicate_line(draw, text: str) -> str:
    lines = text.split("\n")
    i = draw(st.integers(0, len(lines) - 1))
    lines.insert(draw(st.integers(0, len(lines))), lines[i])
    return "\n".join(lines)


def swap_lines(draw, text: str) -> str:
    lines = text.split("\n")
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def replace_number(draw, text: str) -> str:
    match = _pick(draw, list(NUMBER.finditer(text)))
    if match is None:
        return text
    return text[:match.start()] + draw(numbers) + text[match.end():]


def replace_value(draw, text: str) -> str:
    match = _pick(draw, list(VALUE.finditer(text)))
    if match is None:
        return text
    end = value_end(text, match.end())
    return text[:match.end()] + draw(values) + text[end:]


def replace_attribute(draw, text: str) -> str:
    match = _pick(draw, list(ATTRIBUTE.finditer(text)))
    if match is None:
        return text
    return text[:match.start(1)] + draw(attribute_texts) + text[match.end(1):]


def rename(draw, text: str) -> str:
    """Misspell a name (a key, an axis, a link, a tag) by one character."""
    match = _pick(draw, list(IDENTIFIER.finditer(text)))
    if match is None:
        return text
    word = match.group()
    i = draw(st.integers(0, len(word) - 1))
    typo = draw(st.sampled_from(["", "x", word[i] * 2, "_"]))
    return text[:match.start() + i] + typo + text[match.start() + i + 1:]


def truncate(draw, text: str) -> str:
    return text[:draw(st.integers(0, len(text)))]


def insert_characters(draw, text: str) -> str:
    i = draw(st.integers(0, len(text)))
    return text[:i] + draw(inserted) + text[i:]


MUTATIONS = [delete_line, duplicate_line, swap_lines, replace_number, replace_value, replace_attribute,
             rename, truncate, insert_characters]


# Structure-aware mutation: parse the file, change one table of the tree, write it back as TOML.  The
# text stays valid TOML, so every mutant gets past the parser to the loaders' own checks.

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
NAMES = ["track", "elbow", "wrist_2", "lift", "pan", "focus", "zoom", "iris", "flange", "boom", "head_tilt",
         "box", "plane", "cylinder", "positive", "negative", "deg", "m", "25", "29.97df", "00:00:00;00",
         "can://x/y", "Rz(q)", "tz(0.1) Rx(q) Ry(p)", "../rigs/ur10e_track.toml", "urdf/ur10e_track.urdf", "",
         "a\nb", "nul\x00.toml"]
scalars = st.one_of(
    st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, -0.0, 5e-324]),
    st.integers(-10**20, 10**20), st.sampled_from([0, 1, -1, 7, 127, 128]), st.booleans(),
    st.sampled_from(NAMES), st.text(max_size=8), st.dates(),
)
tree_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(NAMES[:12] + ["x", "name", "frame", "position"]), inner, max_size=3)),
    max_leaves=6)


def toml_key(key: str) -> str:
    return key if BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return toml_float(value)
    if isinstance(value, (int,)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    return value.isoformat()                                                    # dates and times


def to_toml(doc: dict) -> str:
    """Top-level tables as [name] and arrays of tables as [[name]]; everything deeper inline."""
    def is_tables(value) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(i, dict) for i in value)

    def body(table: dict) -> list[str]:
        return [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]

    out = body({k: v for k, v in doc.items() if not isinstance(v, dict) and not is_tables(v)})
    for key, value in doc.items():
        if isinstance(value, dict):
            out += ["", f"[{toml_key(key)}]"] + body(value)
        elif is_tables(value):
            for item in value:
                out += ["", f"[[{toml_key(key)}]]"] + body(item)
    return "\n".join(out) + "\n"


def tables(node, path: str, found: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Every table of the tree, grouped by its path without indices (``link[].capsules[]``)."""
    if isinstance(node, dict):
        found.setdefault(path, []).append(node)
        for key, value in node.items():
            tables(value, f"{path}.{key}", found)
    elif isinstance(node, list):
        for value in node:
            tables(value, f"{path}[]", found)
    return found


def mutate_tree(draw, doc: dict) -> None:
    # Each kind of table is equally likely, however many instances it has (capsules would swamp the rest).
    kinds = tables(doc, "", {})
    table = draw(st.sampled_from(kinds[draw(st.sampled_from(sorted(kinds)))]))
    keys = list(table)
    action = draw(st.sampled_from(["replace", "replace", "delete", "add", "rename", "array"]))
    if action == "add" or not keys:
        table[draw(st.sampled_from(NAMES[:12] + ["x", "rotation", "hold", "unit"]))] = draw(tree_values)
        return
    key = draw(st.sampled_from(keys))
    if action == "replace":
        table[key] = draw(tree_values)
    elif action == "delete":
        del table[key]
    elif action == "rename":
        table[key[:-1] + draw(st.sampled_from(["", "x", "_"]))] = table.pop(key)
    elif isinstance(table[key], list) and table[key]:                            # drop, copy or swap items
        items = table[key]
        i, j = draw(st.integers(0, len(items) - 1)), draw(st.integers(0, len(items) - 1))
        operation = draw(st.sampled_from(["drop", "copy", "swap"]))
        if operation == "drop":
            del items[i]
        elif operation == "copy":
            items.insert(j, copy.deepcopy(items[i]))
        else:
            items[i], items[j] = items[j], items[i]


@st.composite
def restructured(draw, text: str) -> str:
    doc = tomllib.loads(text)
    for _ in range(draw(st.integers(1, 3))):
        mutate_tree(draw, doc)
    return to_toml(doc)


@st.composite
def mutated(draw, text: str) -> str:
    for _ in range(draw(st.integers(1, 3))):
        text = draw(st.sampled_from(MUTATIONS))(draw, text)
    return text


def shipped(folder: str, pattern: str) -> list[Path]:
    return sorted((ROOT / folder).glob(pattern))


RIG_FILES = shipped("rigs", "*.toml")
STAGE_FILES = shipped("rigs/stages", "*.toml")
MOVE_FILES = shipped("moves", "*.toml") + shipped("moves/illegal", "*.toml")
URDF_FILES = shipped("rigs/urdf", "*.urdf")


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def run_mutants(original: Path, target: Path, load, mutants=mutated) -> None:
    text = original.read_text(encoding="utf-8")
    outcomes = {"loaded": 0, "refused": 0}

    @MUTANTS
    @given(mutant=mutants(text))
    def fuzz(mutant: str) -> None:
        target.write_text(mutant, encoding="utf-8")
        outcomes["refused" if only_own_errors(load, target) else "loaded"] += 1

    fuzz()
    # A fuzzer that only ever produced garbage (or never broke anything) would test little.
    assert outcomes["loaded"] > 0 and outcomes["refused"] > 0, outcomes


@pytest.mark.parametrize("original", RIG_FILES, ids=_id)
def test_mutated_rig(original: Path, work: Path) -> None:
    run_mutants(original, work / "rigs" / "_mutant.toml", load_rig)


@pytest.mark.parametrize("original", STAGE_FILES, ids=_id)
def test_mutated_stage(original: Path, work: Path) -> None:
    run_mutants(original, work / "rigs" / "stages" / "_mutant.toml", load_stage)


@pytest.mark.parametrize("original", MOVE_FILES, ids=_id)
def test_mutated_move(original: Path, work: Path) -> None:
    """Through load_scene, so the move's rig and stage references are fuzzed too."""
    target = work / original.relative_to(ROOT).parent / "_mutant.toml"
    run_mutants(original, target, load_scene)


def test_to_toml_round_trips() -> None:
    """The writer behind the structural mutants reproduces every shipped TOML file exactly (as data)."""
    for path in RIG_FILES + STAGE_FILES + MOVE_FILES:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        assert tomllib.loads(to_toml(doc)) == doc, path


@pytest.mark.parametrize("original", RIG_FILES + STAGE_FILES + MOVE_FILES, ids=_id)
def test_restructured_file(original: Path, work: Path) -> None:
    """Valid TOML with one table changed: wrong types, missing, extra, misspelt or repeated entries."""
    relative = original.relative_to(ROOT)
    if relative.parts[0] == "moves":
        load = load_scene
    else:
        load = load_stage if "stages" in relative.parts else load_rig
    run_mutants(original, work / relative.parent / "_restructured.toml", load, restructured)


@pytest.mark.parametrize("original", MOVE_FILES[:2], ids=_id)
def test_mutated_move_with_given_rig(original: Path, work: Path) -> None:
    rig = load_scene(original).rig
    target = work / original.relative_to(ROOT).parent / "_mutant_given_rig.toml"
    run_mutants(original, target, lambda p: load_move(p, rig))


@pytest.mark.parametrize("original", URDF_FILES, ids=_id)
def test_mutated_urdf(original: Path, work: Path) -> None:
    target = work / "rigs" / "urdf" / "_mutant.urdf"
    run_mutants(original, target, lambda p: load_urdf(p, str(p), "flange"))


def test_mutated_urdf_through_its_rig(work: Path) -> None:
    """A rig whose URDF is mutated: the rig's cross-checks (limits, tip, link names) meet odd chains."""
    rig_text = (ROOT / "rigs" / "ur10e_track.toml").read_text(encoding="utf-8")
    rig_text = re.sub(r'(?m)^urdf = ".*"$', 'urdf = "urdf/_mutant_of_rig.urdf"', rig_text)
    rig_path = work / "rigs" / "_urdf_mutant_rig.toml"
    rig_path.write_text(rig_text, encoding="utf-8")
    target = work / "rigs" / "urdf" / "_mutant_of_rig.urdf"
    run_mutants(ROOT / "rigs" / "urdf" / "ur10e_track.urdf", target, lambda _: load_rig(rig_path))
