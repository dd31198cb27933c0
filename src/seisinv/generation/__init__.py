"""seisinv.generation."""
