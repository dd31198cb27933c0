"""seisinv.physics."""
