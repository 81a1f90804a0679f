"""KFP v2 components of the training pipeline: thin wrappers over shopfloor library steps.

Each component imports its step inside the function body: a lightweight component ships
only its own source, and runs in the project image where ``shopfloor`` is installed.
"""

from shopfloor.components.convert import convert
from shopfloor.components.deploy import deploy_cloud
from shopfloor.components.edge_rollout import rollout_edge
from shopfloor.components.evaluate import evaluate
from shopfloor.components.image import IMAGE
from shopfloor.components.ingest import ingest
from shopfloor.components.register import register
from shopfloor.components.train import train
from shopfloor.components.validate import validate

__all__ = ["IMAGE", "convert", "deploy_cloud", "evaluate", "ingest", "register", "rollout_edge", "train",
           "validate"]
