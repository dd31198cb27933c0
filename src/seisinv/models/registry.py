"""The model registry: ``create_model(name, survey, **options)`` and its round trip.

Every architecture module registers a builder ``build(survey, *, option=..., ...) -> nn.Module``
with ``@MODELS.register("name")``. Builders take explicit typed keyword options (no ``**kwargs``),
so ``create_model`` can check an unknown option at the door and record every option, defaults
included, in ``model.seisinv_config``; ``rebuild_model(model.seisinv_config)`` then builds the same
architecture again without the original command line (load the weights into it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from seisinv.errors import ConfigError
from seisinv.registry import Registry
from seisinv.survey import Survey, load_survey, survey_from_dict

ModelBuilder = Callable[..., nn.Module]

MODELS: Registry[ModelBuilder] = Registry("model")

# What a model's forward takes, for the few that do not take gathers: "velocity" maps
# (batch, nz, nx) in survey units (e.g. ``family_classifier``). Default "gathers".
MODEL_INPUTS: dict[str, str] = {}


def model_input(name: str) -> str:
    """``"gathers"`` (forward takes (batch, shots, time, receivers)) or ``"velocity"``."""
    MODELS.get(name)
    return MODEL_INPUTS.get(name, "gathers")


def list_models(input: str | None = None) -> list[str]:
    """Names of every registered architecture, sorted; ``input`` keeps those taking that input
    (``"gathers"`` or ``"velocity"``, see ``model_input``)."""
    names = MODELS.names()
    if input is None:
        return names
    return [name for name in names if model_input(name) == input]


def model_options(name: str) -> dict[str, Any]:
    """The options of architecture ``name`` with their default values (``survey`` excluded)."""
    signature = inspect.signature(MODELS.get(name))
    return {
        key: param.default
        for key, param in signature.parameters.items()
        if key != "survey" and param.default is not inspect.Parameter.empty
    }


def _to_plain(value: Any) -> Any:
    """Tuples -> lists, recursively, so a recorded config survives a JSON/YAML round trip."""
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def create_model(name: str, survey: Survey | str, **options: Any) -> nn.Module:
    """Build architecture ``name`` for ``survey``.

    The model maps gathers ``(batch, shots, time, receivers)`` float32 (after the configured data
    transforms, so time and receiver counts may differ from the survey's) to velocity
    ``(batch, nz, nx)`` in the survey's units, depth first, bounded to ``[vmin, vmax]``.

    Args:
        name: a registered architecture (see ``list_models()``).
        survey: a ``Survey`` or a preset name / YAML path.
        **options: the builder's keyword options (see ``model_options(name)``).

    Returns:
        The model, with ``model.seisinv_config = {"name", "survey", "options"}`` recording every
        option (defaults included) so ``rebuild_model`` builds it again.

    Raises:
        SeisinvError: unknown model name.
        ConfigError: an option the builder does not take, or a value it rejects.
    """
    builder = MODELS.get(name)
    survey = load_survey(survey)
    signature = inspect.signature(builder)
    known = [key for key in signature.parameters if key != "survey"]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option {', '.join(unknown)}; options: {', '.join(known)}"
        )
    bound = signature.bind(survey, **options)
    bound.apply_defaults()
    recorded = {key: _to_plain(v) for key, v in bound.arguments.items() if key != "survey"}
    try:
        model = builder(survey, **{k: v for k, v in bound.arguments.items() if k != "survey"})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None
    model.seisinv_config = {"name": name, "survey": survey.to_dict(), "options": recorded}
    return model


def rebuild_model(config: dict[str, Any]) -> nn.Module:
    """Build the architecture described by a recorded ``model.seisinv_config`` (random weights).

    Raises:
        ConfigError: ``config`` lacks ``name``, ``survey`` or ``options``.
    """
    missing = [key for key in ("name", "survey", "options") if key not in config]
    if missing:
        raise ConfigError(f"model config lacks {', '.join(missing)}; got keys {sorted(config)}")
    survey = config["survey"]
    if isinstance(survey, dict):
        survey = survey_from_dict(survey, source="model config")
    return create_model(config["name"], survey, **config["options"])


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
