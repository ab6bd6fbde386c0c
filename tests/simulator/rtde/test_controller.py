"""The fake UR e-Series controller as the robot would be tested: a scripted host on plain sockets.

The host packs every RTDE package by hand with ``struct`` (the layouts of ``docs/ur-rtde-facts.md``: u16
size, u8 type, big-endian payload) and decodes the robot's packages with its own formats; it uses nothing
of the simulator's wire code.  The controller runs in lock-step, so every outcome is exact: one
``lockstep_tick`` is one 2 ms control cycle.  One short test checks the wall-clock output rate.
"""

from __future__ import annotations

import dataclasses
import math
import socket
import struct
import time

import pytest

from motionctl.errors import HardwareError
from motionctl.spec import load_rig
from simulator.faults import FaultInjector, FaultKind, parse_fault
from simulator.rtde.controller import UrController
from tests.conftest import RIGS

UR_ADDRESS = {"shoulder_pan": 1, "shoulder_lift": 2, "elbow": 3, "wrist_1": 4, "wrist_2": 5, "wrist_3": 6}
DT = 0.002
SCRIPT = b"# motionctl servo program 1\ndef motionctl_servo():\n  textmsg(\"modelled, not run\")\nend\n"
OUT_NAMES = ("timestamp,actual_q,actual_qd,target_q,runtime_state,safety_mode,robot_mode,"
             "output_int_register_24,output_int_register_25")
OUT_TYPES = b"DOUBLE,VECTOR6D,VECTOR6D,VECTOR6D,UINT32,INT32,INT32,INT32,INT32"
OUT_FORMAT = struct.Struct(">Bd6d6d6dIiiii")
IN_NAMES = "input_int_register_24,input_int_register_25," + ",".join(
    f"input_double_register_{n}" for n in range(24, 30))
IN_FORMAT = struct.Struct(">Bii6d")
RUNTIME, SAFETY, ROBOT = 20, 21, 22                 # indexes into an unpacked output package


@pytest.fixture(scope="module")
def rig():
    """The UR10e track rig wired to a UR controller: the six arm joints on 1-6; the track is not on it."""
    base = load_rig(RIGS / "ur10e_track.toml")
    return dataclasses.replace(base, hardware=dataclasses.replace(base.hardware, address=UR_ADDRESS))


@pytest.fixture
def make(rig):
    made = []

    def factory(*faults: str, lockstep: bool = True, **kwargs) -> UrController:
        injector = FaultInjector(seed=7)
        for spec in faults:
            injector.add(spec)
        ctl = UrController(rig, injector, lockstep=lockstep, **kwargs).start()
        made.append(ctl)
        return ctl

    yield factory
    for ctl in made:
        ctl.stop()


# -- the scripted host: hand-packed bytes in, its own struct formats out ---------------------------------
def package(kind: str, payload: bytes = b"") -> bytes:
    return struct.pack(">HB", 3 + len(payload), ord(kind)) + payload


class Rtde:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        self.received = bytearray()          # every byte the robot sent, for the determinism check

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("the robot closed the connection")
            data += chunk
        self.received += data
        return data

    def read(self) -> tuple[str, bytes]:
        size, kind = struct.unpack(">HB", self._exactly(3))
        return chr(kind), self._exactly(size - 3)

    def ask(self, kind: str, payload: bytes = b"") -> bytes:
        """Send a request and return the whole reply package, bytes exactly as they arrived."""
        self.send(package(kind, payload))
        got, body = self.read()
        assert got == kind
        return struct.pack(">HB", 3 + len(body), ord(kind)) + body

    def closed(self) -> bool:
        self.sock.settimeout(2.0)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def text_message(body: bytes) -> tuple[str, str, int]:
    n = body[0]
    m = body[1 + n]
    return body[1:1 + n].decode(), body[2 + n:2 + n + m].decode(), body[2 + n + m]


def setup_outputs(names: str, hz: float = 500.0) -> bytes:
    return package("O", struct.pack(">d", hz) + names.encode())


class Dashboard:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        self.file = self.sock.makefile("rwb")
        self.greeting = self.file.readline().decode()

    def __call__(self, command: str) -> str:
        self.file.write(command.encode() + b"\n")
        self.file.flush()
        return self.file.readline().decode().rstrip("\n")


class Host:
    """motionctl's side in lock-step: one input package per tick, then exactly the robot's outputs."""

    def __init__(self, ctl: UrController, *, power: bool = True, program: bool = True) -> None:
        self.ctl = ctl
        self.rtde = Rtde(ctl.ports.rtde)
        assert self.rtde.ask("V", struct.pack(">H", 2)) == package("V", b"\x01")
        reply = self.rtde.ask("O", struct.pack(">d", 500.0) + OUT_NAMES.encode())
        assert reply == package("O", b"\x01" + OUT_TYPES)
        assert self.rtde.ask("I", IN_NAMES.encode()) == package("I", b"\x02INT32,INT32" + b",DOUBLE" * 6)
        assert self.rtde.ask("S") == package("S", b"\x01")
        self.dash = Dashboard(ctl.ports.dashboard)
        if power:
            assert self.dash("power on") == "Powering on"
            assert self.dash("brake release") == "Brake releasing"
        self.tick_no = 0
        self.sent = 0
        self.got = 0
        self.counter = 0
        self.last: tuple = ()
        if program:
            self.send_program()

    def send_program(self, text: bytes = SCRIPT) -> None:
        with socket.create_connection(("127.0.0.1", self.ctl.ports.secondary), timeout=5.0) as sock:
            sock.sendall(text)
        deadline = time.monotonic() + 5.0
        while self.ctl.program_text != text.decode() and time.monotonic() < deadline:
            time.sleep(0.001)

    def tick(self, command: int = 1, q=None, *, fresh: bool = True) -> list[tuple]:
        """One 2 ms cycle: send the registers (unless ``q`` is False), tick, read what the robot sent."""
        self.tick_no += 1
        if q is not False:
            self.counter += 1 if fresh else 0
            target = list(q) if q is not None else self.joints(self.last) if self.last else self.start()
            self.rtde.send(package("U", IN_FORMAT.pack(2, self.counter, command, *target)))
            self.sent += 1
        total = self.ctl.lockstep_tick(self.tick_no, self.sent)
        outs = []
        while self.got < total:
            kind, body = self.rtde.read()
            assert kind == "U"
            outs.append(OUT_FORMAT.unpack(body))
            self.got += 1
        if outs:
            self.last = outs[-1]
        return outs

    def start(self) -> list[float]:
        return self.ctl.positions[1:]

    @staticmethod
    def joints(out: tuple) -> list[float]:
        return list(out[14:20])                   # target_q

    def run(self, targets, command: int = 1) -> list[tuple]:
        return [o for q in targets for o in self.tick(command, q)]


def actual_q(out):
    return out[2:8]


def actual_qd(out):
    return out[8:14]


# -- handshake and setup: golden bytes ---------------------------------------------------------------------
def test_protocol_version_2_accepted_others_refused(make):
    rtde = Rtde(make().ports.rtde)
    assert rtde.ask("V", struct.pack(">H", 1)) == b"\x00\x04V\x00"
    assert rtde.ask("V", struct.pack(">H", 3)) == b"\x00\x04V\x00"
    assert rtde.ask("V", struct.pack(">H", 2)) == b"\x00\x04V\x01"
    assert rtde.ask("v") == b"\x00\x13v" + struct.pack(">IIII", 5, 15, 0, 0)


def test_setup_before_negotiation_is_refused_with_a_text_message_and_closed(make):
    rtde = Rtde(make().ports.rtde)
    rtde.send(setup_outputs("timestamp"))
    kind, body = rtde.read()
    message, source, level = text_message(body)
    assert (kind, source, level) == ("M", "RTDE", 1) and "protocol version 2" in message
    assert rtde.closed()


def test_setup_outputs_types_and_not_found(make):
    rtde = Rtde(make().ports.rtde)
    rtde.ask("V", struct.pack(">H", 2))
    names = "timestamp,actual_q,robot_mode,safety_mode,runtime_state,speed_scaling,output_double_register_47"
    assert rtde.ask("O", struct.pack(">d", 125.0) + names.encode()) == package(
        "O", b"\x01DOUBLE,VECTOR6D,INT32,INT32,UINT32,DOUBLE,DOUBLE")
    # Unknown names (and real ones the fake does not model) are NOT_FOUND; the recipe is refused (id 0).
    assert rtde.ask("O", struct.pack(">d", 500.0) + b"timestamp,bogus,output_int_register_48") == package(
        "O", b"\x00DOUBLE,NOT_FOUND,NOT_FOUND")


def test_output_frequency_above_500_hz_is_refused(make):
    rtde = Rtde(make().ports.rtde)
    rtde.ask("V", struct.pack(">H", 2))
    rtde.send(setup_outputs("timestamp", 501.0))
    kind, body = rtde.read()
    assert kind == "M" and text_message(body)[2] == 1 and "501 Hz" in text_message(body)[0]
    assert rtde.read() == ("O", b"\x00DOUBLE")
    assert rtde.ask("S") == b"\x00\x04S\x00"          # no output recipe: start refused


def test_setup_inputs_in_use_not_found_and_released_on_close(make):
    ctl = make()
    rtde = Rtde(ctl.ports.rtde)
    rtde.ask("V", struct.pack(">H", 2))
    assert rtde.ask("I", b"input_int_register_24,input_double_register_24") == package(
        "I", b"\x01INT32,DOUBLE")
    assert rtde.ask("I", b"input_double_register_25,input_int_register_24") == package(
        "I", b"\x00DOUBLE,IN_USE")
    assert rtde.ask("I", b"input_int_register_48,speed_slider_fraction") == package(
        "I", b"\x00NOT_FOUND,NOT_FOUND")
    rtde.sock.close()
    deadline = time.monotonic() + 5.0
    while ctl.session is not None and time.monotonic() < deadline:
        time.sleep(0.001)
    again = Rtde(ctl.ports.rtde)
    again.ask("V", struct.pack(">H", 2))
    assert again.ask("I", b"input_int_register_24") == package("I", b"\x01INT32")


def test_start_pause_and_data_packages(make):
    ctl = make()
    rtde = Rtde(ctl.ports.rtde)
    rtde.ask("V", struct.pack(">H", 2))
    rtde.ask("O", struct.pack(">d", 250.0) + b"timestamp,robot_mode,safety_mode,runtime_state")
    rtde.ask("I", b"input_int_register_30,input_double_register_30")
    assert rtde.ask("S") == b"\x00\x04S\x01"
    sent = [ctl.lockstep_tick(k, 0) for k in range(1, 7)]
    assert sent == [1, 1, 2, 2, 3, 3]                     # 250 Hz: every second cycle, from the start
    for k in (1, 3, 5):
        assert rtde.read() == ("U", struct.pack(">BdiiI", 1, k * DT, 3, 1, 1))   # POWER_OFF, NORMAL, STOPPED
    rtde.send(package("U", struct.pack(">Bid", 2, -7, 2.5)))
    assert ctl.lockstep_tick(7, 1) == 4
    rtde.read()
    assert ctl.inputs["input_int_register_30"] == -7 and ctl.inputs["input_double_register_30"] == 2.5
    assert rtde.ask("P") == b"\x00\x04P\x01"
    assert ctl.lockstep_tick(8, 1) == 4 and ctl.lockstep_tick(9, 1) == 4


@pytest.mark.parametrize("raw, words", [
    (b"\x00\x02V", "smaller than its 3-byte header"),
    (package("X"), "unknown package type 88"),
    (package("U", struct.pack(">Bi", 1, 5)), "needs 13"),          # recipe 1 is int + double
    (package("U", struct.pack(">Bi", 9, 5)), "not an input recipe"),
])
def test_malformed_packages_get_a_text_message_and_the_connection_closes(make, raw, words):
    rtde = Rtde(make().ports.rtde)
    rtde.ask("V", struct.pack(">H", 2))
    rtde.ask("I", b"input_int_register_24,input_double_register_24")
    rtde.send(raw)
    kind, body = rtde.read()
    message, _, level = text_message(body)
    assert kind == "M" and level == 1 and words in message
    assert rtde.closed()


def test_one_rtde_client_at_a_time(make):
    ctl = make()
    first = Rtde(ctl.ports.rtde)
    assert first.ask("V", struct.pack(">H", 2)) == b"\x00\x04V\x01"
    second = Rtde(ctl.ports.rtde)
    kind, body = second.read()
    assert kind == "M" and "another RTDE client" in text_message(body)[0]
    assert second.closed()


# -- dashboard and secondary interface ---------------------------------------------------------------------
def test_dashboard_power_on_sequence_and_replies(make):
    ctl = make()
    dash = Dashboard(ctl.ports.dashboard)
    assert dash.greeting == "Connected: Universal Robots Dashboard Server\n"
    assert dash("robotmode") == "Robotmode: POWER_OFF"
    assert dash("brake release") == "Brake releasing" and dash("robotmode") == "Robotmode: POWER_OFF"
    assert dash("power on") == "Powering on" and dash("robotmode") == "Robotmode: IDLE"
    assert dash("brake release") == "Brake releasing" and dash("robotmode") == "Robotmode: RUNNING"
    assert dash("safetymode") == "Safetymode: NORMAL"
    assert dash("programState") == "STOPPED <unnamed>"
    assert dash("running") == "Program running: false"
    assert dash("PolyscopeVersion").startswith("URSoftware 5.15.0.0")
    assert dash("play") == "Failed to execute: play"
    assert dash("make coffee") == "could not understand: 'make coffee'"
    assert dash("power off") == "Powering off" and dash("robotmode") == "Robotmode: POWER_OFF"
    assert dash("quit") == "Disconnected"
    assert dash.file.readline() == b""


def test_script_on_the_secondary_interface_starts_the_program(make):
    ctl = make()
    host = Host(ctl, power=False, program=False)
    host.send_program()                                         # robot off: recorded, not run
    assert ctl.program_text == SCRIPT.decode() and ctl.runtime_state == 1
    assert "program refused: robot mode POWER_OFF, safety mode NORMAL" in ctl.events
    host.dash("power on"), host.dash("brake release")
    with socket.create_connection(("127.0.0.1", ctl.ports.secondary)) as sock:
        for i in range(0, len(SCRIPT), 7):                      # arrives in pieces: one program all the same
            sock.sendall(SCRIPT[i:i + 7])
            time.sleep(0.001)
    deadline = time.monotonic() + 5.0
    while ctl.runtime_state != 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert ctl.runtime_state == 2 and ctl.program_state == 1
    assert host.dash("programState") == "PLAYING motionctl_servo"
    assert host.dash("running") == "Program running: true"
    host.send_program(b'movej([0, 0, 0, 0, 0, 0])\n')            # anything else replaces it and is not run
    assert ctl.runtime_state == 1 and ctl.program_text == "movej([0, 0, 0, 0, 0, 0])\n"


# -- the control program in lock-step ------------------------------------------------------------------
def smooth(start, amplitude: float, cycles: int):
    """A cosine move of ``amplitude`` rad on every joint over ``cycles`` cycles (well inside the limits)."""
    return [[q + amplitude * (1 - math.cos(math.pi * k / cycles)) / 2 for q in start]
            for k in range(1, cycles + 1)]


def test_program_follows_then_holds(make):
    host = Host(make())
    start = host.start()
    path = smooth(start, 0.2, 500)
    outs = host.run(path + [path[-1]] * 100)
    assert len(outs) == 600
    errors = [max(abs(a - t) for a, t in zip(actual_q(o), q)) for o, q in zip(outs, path + [path[-1]] * 100)]
    assert max(errors[:500]) < 2e-3 and errors[-1] < 1e-6
    assert outs[-1][-2:] == (2, 600)                            # following; the counter it saw
    assert outs[-1][RUNTIME:ROBOT + 1] == (2, 1, 7)             # PLAYING, NORMAL, RUNNING
    held = host.run([path[-1]] * 50, command=0)
    assert held[-1][-2] == 1 and max(abs(v) for v in actual_qd(held[-1])) < 1e-6


def test_program_ends_when_the_counter_goes_stale_exactly_after_10_cycles(make):
    host = Host(make())
    host.run(smooth(host.start(), 0.05, 100))
    last = host.last
    stale = [host.tick(1, host.joints(last), fresh=False)[0] for _ in range(10)]
    assert [o[-2] for o in stale] == [2] * 9 + [4]             # the 10th cycle without a new counter ends it
    assert stale[-1][-1] == 100 and stale[-1][RUNTIME] == 1         # the last counter it saw; runtime STOPPED
    assert "program ended: registers went stale" in host.ctl.events
    assert host.tick(1)[0][-2] == 4                            # ended: a new counter no longer matters


def test_stopj_brakes_within_each_joints_amax_then_waits(make, rig):
    host = Host(make())
    start = host.start()
    ramp = [[q + 0.5 * DT * k * k / 200 if k < 200 else q + 0.5 * DT * (2 * k - 200) for q in start]
            for k in range(1, 301)]                             # 2.5 rad/s^2 up to 1 rad/s, then steady
    host.run(ramp)
    before = actual_qd(host.last)
    assert min(abs(v) for v in before) > 0.95
    outs = [o for _ in range(150) for o in host.tick(2, host.joints(host.last))]
    amax = [a.amax for a in rig.axes[1:]]
    speeds = [before] + [actual_qd(o) for o in outs]
    for previous, now in zip(speeds, speeds[1:]):
        assert all(abs(n - p) <= a * DT * (1 + 1e-9) for p, n, a in zip(previous, now, amax))
    assert all(v == 0.0 for v in speeds[-1]) and outs[-1][-2] == 3
    assert host.tick(0, host.joints(host.last))[0][-2] == 1     # at rest: hold where it stopped


def test_command_3_ends_the_program(make):
    host = Host(make())
    host.run(smooth(host.start(), 0.05, 20))
    out = host.tick(3, host.joints(host.last))[0]
    assert out[-2] == 5 and out[RUNTIME] == 1
    assert "program ended: asked" in host.ctl.events


def test_target_beyond_a_joint_limit_is_a_protective_stop(make):
    host = Host(make())
    target = host.start()
    target[2] = math.radians(181.0)                             # elbow: -180..180 deg
    out = host.tick(1, target)[0]
    assert out[SAFETY] == 3 and out[RUNTIME] == 4                       # PROTECTIVE_STOP, PAUSED


# -- faults ------------------------------------------------------------------------------------------------
def test_protective_stop_pauses_then_unlock_after_5_s_and_play(make):
    host = Host(make("protective@0.101"))
    start = host.start()
    outs = host.run(smooth(start, 0.3, 150))
    assert [o[SAFETY] for o in outs[49:51]] == [1, 3] and outs[-1][RUNTIME] == 4   # cycle 51: stop, pause
    assert all(v == 0.0 for v in actual_qd(outs[-1]))
    assert host.dash("safetymode") == "Safetymode: PROTECTIVE_STOP"
    assert host.dash("unlock protective stop").startswith("Cannot unlock protective stop until 5s")
    for _ in range(2500):
        host.tick(0, host.joints(host.last))
    assert host.dash("unlock protective stop") == "Protective stop releasing"
    assert host.dash("safetymode") == "Safetymode: NORMAL"
    assert host.dash("play") == "Starting program"
    assert host.tick(0, host.joints(host.last))[0][RUNTIME] == 2


def test_program_stop_on_the_pendant(make):
    host = Host(make("programstop@0.101"))
    outs = host.run(smooth(host.start(), 0.3, 150))
    assert [o[RUNTIME] for o in outs[49:51]] == [2, 1] and all(v == 0.0 for v in actual_qd(outs[-1]))
    assert host.dash("programState") == "STOPPED motionctl_servo"


def test_emergency_stop_powers_off_and_the_release_needs_power_on(make):
    host = Host(make("estop@0.101+0.15"))
    outs = host.run(smooth(host.start(), 0.3, 150))
    assert outs[50][SAFETY] == 7 and outs[50][RUNTIME] == 1
    assert outs[-1][SAFETY] == 1 and outs[-1][ROBOT] == 3              # released after 0.15 s; POWER_OFF
    assert host.dash("power on") == "Powering on" and host.dash("robotmode") == "Robotmode: IDLE"


def test_unplug_closes_the_rtde_socket_and_ticks_do_not_wait(make):
    host = Host(make("unplug@0.101"))
    assert len(host.run(smooth(host.start(), 0.05, 51))) == 50  # cycle 51 unplugs before its output
    t0 = time.monotonic()
    sent = host.ctl.lockstep_tick(52, host.sent + 1)           # a package the host lost: nothing to wait for
    assert time.monotonic() - t0 < 2.0 and sent == 50
    assert host.rtde.closed()
    assert "rtde: connection closed (unplugged (fault injection))" in host.ctl.events


def test_stall_withholds_output_packages(make):
    host = Host(make("stall@0.101+0.05"))
    outs = host.run(smooth(host.start(), 0.05, 100))
    assert len(outs) == 75                                      # cycles 51..75 sent nothing
    assert [round(o[1] / DT) for o in outs[49:51]] == [50, 76]


def test_new_fault_kinds_parse():
    assert parse_fault("protective@3").kind is FaultKind.PROTECTIVE
    assert parse_fault("programstop@2.5").kind is FaultKind.PROGRAMSTOP
    fault = parse_fault("estop@3+2")
    assert (fault.kind, fault.at_s, fault.duration_s) == (FaultKind.ESTOP, 3.0, 2.0)


# -- binding, determinism, wall clock ----------------------------------------------------------------------
def test_binding_refuses_a_linear_axis_on_a_ur_joint(rig):
    address = {**UR_ADDRESS, "track": 1, "shoulder_pan": 7}
    bad = dataclasses.replace(rig, hardware=dataclasses.replace(rig.hardware, address=address))
    with pytest.raises(HardwareError, match="linear"):
        UrController(bad)
    ctl = UrController(rig)
    assert ctl.positions == pytest.approx(list(rig.park))
    ctl.stop()


def run_session(make) -> bytes:
    host = Host(make("protective@0.5"))
    host.run(smooth(host.start(), 0.4, 300))
    return bytes(host.rtde.received)


def test_two_lockstep_runs_send_identical_bytes(make):
    first, second = run_session(make), run_session(make)
    assert len(first) > 300 * OUT_FORMAT.size and first == second


@pytest.mark.wall_clock
def test_wall_clock_outputs_arrive_at_about_500_hz(make):
    ctl = make(lockstep=False)
    rtde = Rtde(ctl.ports.rtde)
    rtde.ask("V", struct.pack(">H", 2))
    rtde.ask("O", struct.pack(">d", 500.0) + b"timestamp")
    rtde.ask("S")
    t0 = time.monotonic()
    stamps = []
    while time.monotonic() - t0 < 1.0:
        kind, body = rtde.read()
        stamps.append(struct.unpack(">Bd", body)[1])
    elapsed = time.monotonic() - t0
    assert 150 < len(stamps) / elapsed < 700                    # about 500 Hz: generous for a busy machine
    steps = [round((b - a) / DT) for a, b in zip(stamps, stamps[1:])]
    assert min(steps) >= 1                                      # whole cycles, never backwards
