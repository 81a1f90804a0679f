"""Canonical schema, loaders, data versions and the factory simulator."""

#: Source name of the AI4I 2020 data shipped with the package (a pipeline's default source).
EMBEDDED_DATASET = "embedded:ai4i2020"
