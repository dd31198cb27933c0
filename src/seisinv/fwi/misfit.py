"""FWI's data misfits; defined once in ``seisinv.physics.misfit`` and re-exported here."""

from seisinv.physics.misfit import MISFITS, l2_misfit, normalized_misfit

__all__ = ["MISFITS", "l2_misfit", "normalized_misfit"]
