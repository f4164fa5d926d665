"""lfm.deploy: serving artifacts for a trained model (`lfm deploy`).

Over the compiler (its deployment plans and templates) and the registry (a `name:version`
reference is resolved to its verified files); :mod:`.models` says what a reference names,
:mod:`.plan` plans, renders and writes the deployment.
"""

from .models import DeployError, ResolvedModel, resolve_model_reference
from .plan import DeployPlan, deploy_plan, render_deployment, write_deployment

__all__ = [
    "DeployError",
    "DeployPlan",
    "ResolvedModel",
    "deploy_plan",
    "render_deployment",
    "resolve_model_reference",
    "write_deployment",
]
