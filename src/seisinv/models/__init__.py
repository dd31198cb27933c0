"""seisinv.models."""
