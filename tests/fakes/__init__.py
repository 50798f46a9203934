"""Loopback fakes of the outside systems, speaking their real wire formats."""
