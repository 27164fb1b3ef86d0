"""The lab: a simulated Windows estate behind the same transport seam as real remoting.

It answers each template by name with the JSON the real template would return, keeps
its state in SQLite so successive commands see each other's effects, and enforces
Hyper-V's own rules and errors. Nothing outside this package knows it is a lab.
"""
