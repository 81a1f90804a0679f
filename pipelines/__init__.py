"""KFP v2 pipelines of shopfloor (importable as ``shopfloor.pipelines``)."""

from shopfloor.pipelines.training import training_pipeline

__all__ = ["training_pipeline"]
