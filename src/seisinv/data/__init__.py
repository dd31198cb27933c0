"""seisinv.data."""
