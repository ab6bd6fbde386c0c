"""The stage network: rig daemons and operator stations on Eclipse Zenoh (docs/stage-network.md)."""
