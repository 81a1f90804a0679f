"""Canonical schema, loaders, data versions and the factory simulator."""
