"""shopfloor: MLOps for the factory floor, from notebook to cloud to edge."""

__version__ = "0.1.0"
