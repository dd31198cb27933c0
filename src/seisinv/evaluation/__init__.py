"""Evaluation: metrics, per-family scoring, baselines, the physics check and reports.

Modules (imported on demand; this package imports nothing heavy)::

    metrics    mae / rmse / mape (Speed & Structure) / ssim, numpy or torch   (pure functions)
    truth      iter_truth / load_truth: labelled samples from datasets or prediction dirs
    evaluate   evaluate_store(store, truth) -> Evaluation; metrics_table, metrics_markdown
    baselines  mean_map, depth_profile, fit_baselines, write_baseline
    qc         qc_store(store, source) -> misfit per shot/sample; write_qc
    figures    training_curves, velocity_comparison, gathers_figure, metric_bars (PNG)
    report     write_report(out, ReportInputs(...)), report_for(paths...) -> index.html

See ``docs/evaluation.md``.
"""
