"""Accord's runtime: bus, ledger, session runner, CLI. Everything that touches the world."""

__version__ = "0.1.0"
