"""The CANopen backend: CiA 301 plumbing, the CiA 402 state machine, EMCY, bus load, the CSP driver."""
