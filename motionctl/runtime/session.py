"""One take from start to finish: open, enable, go to start, arm, run, and a summary in plain words.

Used by ``motionctl run`` and by pipelines; the terminal UI drives the same :class:`Streamer` step by step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from motionctl.errors import HardwareError
from motionctl.hal.driver import Driver
from motionctl.planner.plan import Plan
from motionctl.runtime.streamer import RunState, Streamer, StreamerOptions
from motionctl.runtime.takes import TakeWriter

FINAL = {RunState.DONE, RunState.STOPPED, RunState.FAULTED, RunState.ESTOPPED}


@dataclass
class TakeResult:
    state: RunState
    take: Path | None
    summary: dict
    start_error: list[float] | None


def run_take(plan: Plan, driver: Driver, *, takes_dir: Path | str | None = "takes", speed: float = 1.0,
             options: StreamerOptions = StreamerOptions(), on_state: Callable[[RunState, str], None] | None = None,
             interrupt: Callable[[Streamer], None] | None = None, timeout_s: float | None = None,
             timecode: object | None = None, vcam: object | None = None, clock: object | None = None,
             meta: dict | None = None) -> TakeResult:
    """Run ``plan`` once on an opened ``driver``.  ``interrupt(streamer)`` is polled so a caller can stop it.
    ``meta``: more for the take's meta.json (the CLI adds ``move_sha256``, the file the plan was made from)."""
    take = None
    if takes_dir is not None:
        take = TakeWriter(takes_dir, {"move": plan.move.name, "move_file": plan.move.file, "rig": plan.rig.name,
                                      "fps": plan.move.rate.label, "start_timecode": plan.move.start.label,
                                      "transport": driver.url, "speed": speed,
                                      "duration_s": plan.trajectory.duration_s, **(meta or {})},
                          driver.axis_names, plan.rate_hz)
    streamer = Streamer(plan, driver, take=take, options=options, on_state=on_state, timecode=timecode, vcam=vcam,
                        clock=clock)
    streamer.set_override(speed)
    streamer.run_in_thread()            # finds the drives, then streams "hold here" every tick
    if not streamer.run_until(streamer.ready.is_set, 5.0) or streamer.state is RunState.FAULTED:
        streamer.shutdown()
        raise HardwareError(streamer.fault_message or "the drives did not answer")
    driver.enable()
    budget = timeout_s or (plan.trajectory.duration_s / max(speed, 0.05) + 120.0)
    deadline = streamer.clock.now_ns() + int(budget * 1e9)
    try:
        streamer.go_to_start()
        _wait(streamer, {RunState.AT_START} | FINAL, deadline, interrupt)
        if streamer.state is RunState.AT_START:
            streamer.arm()
            _wait(streamer, {RunState.ARMED} | FINAL, deadline, interrupt)
        if streamer.state is RunState.ARMED:
            if timecode is None:
                streamer.start()            # on timecode, the streamer starts itself on the start frame
            _wait(streamer, FINAL, deadline, interrupt)
        if streamer.state not in FINAL and streamer.clock.now_ns() >= deadline:
            streamer.stop()
            _wait(streamer, FINAL, streamer.clock.now_ns() + 30 * 10**9, None)
        # A queued link is still playing what was sent: the take ends when the drives have played it.
        streamer.run_until(lambda: streamer.drained, 5.0)
    finally:
        streamer.shutdown()
    return TakeResult(streamer.state, take.path if take else None, streamer.summary.__dict__,
                      None if streamer.start_error is None else streamer.start_error.tolist())


def _wait(streamer: Streamer, states: set[RunState], deadline_ns: int, interrupt) -> None:
    """Let the run's time pass until one of ``states``; a refusal (e.g. "not armed: ... from the start")
    ends the take.  ``interrupt(streamer)`` is polled meanwhile (Ctrl-C handling)."""
    refusals = len(streamer.refusals)

    def reached() -> bool:
        if interrupt is not None:
            interrupt(streamer)
        return streamer.state in states or len(streamer.refusals) > refusals

    streamer.run_until(reached, max(0.0, (deadline_ns - streamer.clock.now_ns()) / 1e9))
    if len(streamer.refusals) > refusals:
        raise HardwareError(streamer.refusals[-1])
    if streamer.state in states:
        return
    raise HardwareError(f"the run did not reach {', '.join(s.value for s in states)} in time (now {streamer.state.value})")
