"""seisinv.geology."""
