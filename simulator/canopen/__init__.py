"""Simulated CiA 402 drives on a python-can bus, written from CiA 301 and CiA 402."""
