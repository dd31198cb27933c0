"""Prediction, test-time augmentation, ensembles and submission files.

Modules (imported on demand)::

    store       PredictionStore: the prediction-directory format every stage shares
    predict     predict(run, source, store, tta=("flip",), batch=16): batched, resumable
    tta         weighted test-time augmentation views (tta_views, parse_tta)
    ensemble    METHODS (mean, median, weighted, hill_climb), combine / fit_plan / ensemble_stores
    ensemble_job  run_ensemble: the ensemble stage (plan, families, post-processing)
    postprocess POSTPROCESS registry: clip, round, snap_levels, bias, lowpass, gaussian, ...
    pseudo_label  make_pseudo_labels: predictions -> simulated synthetic training set
    submission  write_submission(fmt, path, predictions, survey, expected_ids) + readers

See ``docs/inference.md``.
"""
