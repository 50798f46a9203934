"""The review meeting: choosing its slot, its agenda, and the RFC 5545 invite calendars read."""
