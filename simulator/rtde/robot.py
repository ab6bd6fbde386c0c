"""The fake UR controller's robot: its modes, the control program's cycle, stops, and its RTDE outputs.

A mixin of :class:`simulator.rtde.controller.UrController` (which owns the sockets, the threads and the
clock); every method runs under the controller's lock.  The choices are ``docs/ur-rtde-facts.md`` §9-§10.
"""

from __future__ import annotations

import math
from typing import Callable

from simulator.rtde import wire as w
from simulator.faults import FaultInjector, FaultKind
from simulator.rtde.arm import FOLLOW, JOINTS, PROGRAM_MARK, ServoProgram, UrArm
from simulator.rtde.text import program_name

COUNTER, COMMAND, TARGETS = "input_int_register_24", "input_int_register_25", 24


class UrRobot:
    """State and behaviour of the robot behind the controller's interfaces."""

    arm: UrArm
    faults: FaultInjector
    period: float
    cycles: int
    inputs: dict[str, float | int]
    outputs_int: list[int]
    outputs_double: list[float]
    robot_mode: int
    safety_mode: int
    runtime_state: int
    program: ServoProgram | None
    program_text: str | None
    program_name: str
    events: list[str]
    _log: Callable[[str], None]
    _program_cycle0: int | None
    _protective_cycle: int
    _estop_release: float | None
    _estop_power_off: bool

    def close_rtde(self, reason: str) -> None:
        raise NotImplementedError

    def now(self) -> float:
        """Seconds of controller time since the first control program started (the fault clock)."""
        return 0.0 if self._program_cycle0 is None else (self.cycles - self._program_cycle0) * self.period

    def event(self, text: str) -> None:
        self.events.append(text)
        self._log(text)

    def _run_program(self, program: ServoProgram) -> None:
        counter = int(self.inputs[COUNTER])
        command = int(self.inputs[COMMAND])
        q = [float(self.inputs[f"input_double_register_{TARGETS + i}"]) for i in range(JOINTS)]
        if command == FOLLOW and counter != program.counter:
            if not all(math.isfinite(v) for v in q):
                self.stop_program("program error: a joint target is not a finite number")
                return
            joint = self.arm.outside_limits(q)
            if joint is not None:
                self.protective_stop(f"joint {joint + 1} target {q[joint]:.4f} rad is beyond its limits")
                return
        ended = program.cycle(self.arm, counter, command, q)
        self.outputs_int[24], self.outputs_int[25] = program.state, program.counter
        if ended:
            self.runtime_state = w.STOPPED
            self.event(ended)

    def _timed_faults(self) -> None:
        if self._program_cycle0 is None:
            return
        t = self.now()
        for _ in self.faults.once(FaultKind.PROTECTIVE, t):
            self.protective_stop("protective stop (fault injection)")
        for _ in self.faults.once(FaultKind.PROGRAMSTOP, t):
            self.stop_program("program stopped on the teach pendant (fault injection)")
        for fault in self.faults.once(FaultKind.ESTOP, t):
            self.safety_mode = w.ROBOT_EMERGENCY_STOP
            self._estop_power_off = True
            self._estop_release = None if fault.duration_s is None else fault.at_s + fault.duration_s
            self.stop_program("robot emergency stop (fault injection)")
        if self._estop_release is not None and t >= self._estop_release:
            self._estop_release = None
            self.safety_mode = w.NORMAL
            self.event("emergency stop released: power on and brake release needed")
        for _ in self.faults.once(FaultKind.UNPLUG, t):
            self.close_rtde("unplugged (fault injection)")

    def output_values(self, names: tuple[str, ...]) -> dict[str, object]:
        """The values of an output recipe's variables, now."""
        values: dict[str, object] = {}
        state: dict[str, object] | None = None
        for name in names:
            if name.startswith("output_int_register_"):
                values[name] = self.outputs_int[int(name.rsplit("_", 1)[1])]
            elif name.startswith("output_double_register_"):
                values[name] = self.outputs_double[int(name.rsplit("_", 1)[1])]
            else:
                state = state or self._state_values()
                values[name] = state[name]
        return values

    def _state_values(self) -> dict[str, object]:
        stopped = self.safety_mode != w.NORMAL
        return {
            "timestamp": self.cycles * self.period,
            "target_q": self.arm.target, "target_qd": self.arm.target_qd, "target_qdd": self.arm.target_qdd,
            "actual_q": self.arm.q, "actual_qd": self.arm.qd,
            "robot_mode": self.robot_mode, "safety_mode": self.safety_mode, "safety_status": self.safety_mode,
            "safety_status_bits": self._safety_bits(),
            "robot_status_bits": (int(self.robot_mode in (w.IDLE, w.RUNNING))
                                  | int(self.runtime_state == w.PLAYING) << 1),
            "runtime_state": self.runtime_state,
            "speed_scaling": 0.0 if stopped else 1.0, "target_speed_fraction": 1.0,
        }

    def _safety_bits(self) -> int:
        mode = self.safety_mode
        bits = {w.NORMAL: 1 << 0, w.PROTECTIVE_STOP: 1 << 2 | 1 << 10,
                w.ROBOT_EMERGENCY_STOP: 1 << 6 | 1 << 7 | 1 << 10}
        return bits.get(mode, 1 << 10)

    # -- robot actions (dashboard, faults, programs) --------------------------------------------------------
    def load_program(self, text: str) -> None:
        """A program arrived on the secondary interface: it replaces the running one and starts at once."""
        was_running = self.program is not None and self.runtime_state in (w.PLAYING, w.PAUSED)
        self.program_text = text
        self.program_name = program_name(text)
        if text.splitlines()[0].strip() != PROGRAM_MARK:
            self.stop_program("a program that is not motionctl's servo program arrived: not run")
            return
        if self.robot_mode != w.RUNNING or self.safety_mode != w.NORMAL:
            self.stop_program(f"program refused: robot mode {w.ROBOT_MODES[self.robot_mode]}, "
                              f"safety mode {w.SAFETY_MODES[self.safety_mode]}")
            return
        if not was_running:
            self.arm.hold_here()
        self.program = ServoProgram(counter=int(self.inputs[COUNTER]), target=self.arm.target)
        self.runtime_state = w.PLAYING
        self.outputs_int[24], self.outputs_int[25] = self.program.state, self.program.counter
        if self._program_cycle0 is None:
            self._program_cycle0 = self.cycles
        self.event(f"program started: {self.program_name}")

    def stop_program(self, reason: str) -> None:
        self.event(reason)
        self.program = None
        self.runtime_state = w.STOPPED

    def protective_stop(self, reason: str) -> None:
        if self.safety_mode != w.NORMAL:
            return
        self.safety_mode = w.PROTECTIVE_STOP
        self._protective_cycle = self.cycles
        if self.runtime_state == w.PLAYING:
            self.runtime_state = w.PAUSED
        self.event(reason)

    def unlock_protective_stop(self, wait_s: float) -> bool:
        if self.safety_mode != w.PROTECTIVE_STOP:
            return True
        if (self.cycles - self._protective_cycle) * self.period < wait_s:
            return False
        self.safety_mode = w.NORMAL
        self.event("protective stop unlocked")
        return True

    def play(self) -> bool:
        ok = (self.program is not None and self.runtime_state == w.PAUSED and self.robot_mode == w.RUNNING
              and self.safety_mode == w.NORMAL)
        if ok:
            self.runtime_state = w.PLAYING
            self.event("program resumed")
        return ok

    def pause(self) -> bool:
        if self.runtime_state != w.PLAYING:
            return False
        self.runtime_state = w.PAUSED
        self.event("program paused")
        return True

    def power_on(self) -> None:
        if self.robot_mode == w.POWER_OFF and self.safety_mode != w.ROBOT_EMERGENCY_STOP:
            self.robot_mode = w.IDLE

    def power_off(self) -> None:
        self.stop_program("program stopped: power off")
        for joint in self.arm.joints:         # the brakes engage at once
            joint.v = 0.0
            joint.hold_here()
        self.robot_mode = w.POWER_OFF

    def brake_release(self) -> None:
        if self.robot_mode == w.IDLE:
            self.robot_mode = w.RUNNING
