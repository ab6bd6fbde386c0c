"""Simulated servo drives: the device side of motionctl's serial and CAN wires.

Not built yet: it arrives with the hardware-layer issue (simulated drives for every axis of a rig, the
serial protocol on a pseudo-terminal, CiA 402 on a python-can bus, fault injection).  motionctl never
imports this package; it reaches it through a transport URL, exactly like hardware.
"""
