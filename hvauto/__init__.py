"""hvauto: automate Hyper-V hosts over WinRM/PSRP, with a simulated lab estate."""

__version__ = "0.1.0"
