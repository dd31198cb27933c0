"""Prediction, test-time augmentation, ensembles and submission files.

Modules (imported on demand)::

    store       PredictionStore: the prediction-directory format every stage shares
    predict     predict(run, source, store, tta=("flip",), batch=16): batched, resumable
    ensemble    combine / fit_weights / fit_plan / ensemble_stores (mean, median, weighted)
    submission  write_submission(fmt, path, predictions, survey, expected_ids) + readers

See ``docs/inference.md``.
"""
