"""seisinv.evaluation."""
