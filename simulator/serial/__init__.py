"""A simulated serial controller: the device side of docs/serial-protocol.md on a pseudo-terminal."""
