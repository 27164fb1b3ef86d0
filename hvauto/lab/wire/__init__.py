"""The lab over the wire: a WinRM endpoint on loopback that answers from the lab estate.

``hvauto lab serve`` runs :class:`~hvauto.lab.wire.server.WireServer`; ``hvauto lab init
--serve`` writes an inventory whose hosts reach it with the real ``psrp`` transport.
"""
