"""The model zoo: every architecture behind one registry.

``create_model(name, survey, **options)`` builds a registered architecture mapping gathers
``(batch, shots, time, receivers)`` to velocity ``(batch, nz, nx)`` (depth first, survey units,
bounded to ``[survey.vmin, survey.vmax]``); ``rebuild_model(model.seisinv_config)`` builds it again.
"""

from seisinv.models import (  # noqa: F401  (register the architectures)
    eva_attention,
    eva_fusion,
    inversionnet,
    unet,
    xattn,
)
from seisinv.models.registry import (
    MODELS,
    count_parameters,
    create_model,
    list_models,
    model_options,
    rebuild_model,
)
from seisinv.models.sizes import MODEL_SIZES, size_options

__all__ = [
    "MODELS",
    "MODEL_SIZES",
    "count_parameters",
    "create_model",
    "list_models",
    "model_options",
    "rebuild_model",
    "size_options",
]
