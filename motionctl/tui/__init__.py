"""The operator's terminal UI (``motionctl tui``): Textual screens over a non-blocking rig controller.

Layers: ``controller`` (no Textual: connection, streamer, moves, takes, jog, teach), ``telemetry`` (one
coalesced snapshot per refresh), ``library`` (moves and their check verdicts), then the Textual parts:
``app``, ``screens``, ``widgets``, ``plot``, ``keys``.
"""
