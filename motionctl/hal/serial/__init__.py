"""motionctl's serial backend: the binary streaming protocol of docs/serial-protocol.md."""
