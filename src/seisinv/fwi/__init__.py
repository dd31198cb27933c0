"""seisinv.fwi."""
