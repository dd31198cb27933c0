"""The model zoo: every architecture behind one registry.

``create_model(name, survey, **options)`` builds a registered architecture mapping gathers
``(batch, shots, time, receivers)`` to velocity ``(batch, nz, nx)`` (depth first, survey units,
bounded to ``[survey.vmin, survey.vmax]``; ``model_input(name) == "velocity"`` marks the few that
map velocity maps instead, e.g. ``family_classifier``); ``rebuild_model(model.seisinv_config)``
builds it again.
"""

from seisinv.models import (  # noqa: F401  (register the architectures)
    convnext_unet,
    diffusion_vel,
    eva_attention,
    eva_fusion,
    family_classifier,
    gwi_vit,
    inversionnet,
    learned_ensemble,
    unet,
    xattn,
)
from seisinv.models.family_classifier import classify
from seisinv.models.registry import (
    MODELS,
    count_parameters,
    create_model,
    list_models,
    model_input,
    model_options,
    rebuild_model,
)
from seisinv.models.sizes import MODEL_SIZES, size_options

__all__ = [
    "MODELS",
    "MODEL_SIZES",
    "classify",
    "count_parameters",
    "create_model",
    "list_models",
    "model_input",
    "model_options",
    "rebuild_model",
    "size_options",
]
