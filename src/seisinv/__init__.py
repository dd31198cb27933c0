"""seisinv: data-driven seismic velocity inversion.

Python API entry points (imported lazily so ``import seisinv`` stays fast):

- ``seisinv.load_survey(name_or_yaml)`` and the presets in ``seisinv.survey``
- ``seisinv.physics.simulate(velocity, survey)``: deepwave forward modelling
- ``seisinv.geology``: velocity-model families
- ``seisinv.data``: readers, validation, transforms, folds
- ``seisinv.models.create_model(name, survey, **options)``
- ``seisinv.training``, ``seisinv.inference``, ``seisinv.evaluation``, ``seisinv.fwi``
"""

from seisinv.errors import SeisinvError
from seisinv.survey import OPENFWI, SPEED_STRUCTURE, Survey, load_survey

__version__ = "0.1.0"
__all__ = ["OPENFWI", "SPEED_STRUCTURE", "SeisinvError", "Survey", "__version__", "load_survey"]
