"""Prediction, test-time augmentation, ensembles and submission files."""
