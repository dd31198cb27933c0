"""seisinv.training."""
