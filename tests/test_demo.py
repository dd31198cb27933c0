"""`seisinv demo` end to end at the tiny size (the same stage code as the real demo)."""

from __future__ import annotations

import json
import re

import pytest

from seisinv.demo import BASELINE_NAMES, SIZES, run_demo


@pytest.mark.slow
def test_tiny_demo_runs_end_to_end_and_resumes(tmp_path):
    lines: list[str] = []
    out = tmp_path / "demo"
    result = run_demo(out, size="tiny", device="cpu", echo=lines.append, progress=False)

    # Stage banners in order, all seven.
    assert [line.split("]")[0] for line in lines] == [f"[{i}/7" for i in range(1, 8)]
    # Metrics for the model and both baselines on every test sample.
    n_test = SIZES["tiny"].n_test
    assert set(result.metrics) == {"model", *BASELINE_NAMES}
    assert all(m["n"] == n_test for m in result.metrics.values())
    assert all(m["mae"] > 0 and 0 <= m["mape"] < 1 for m in result.metrics.values())
    # Predictions were made with flip TTA and recorded as such.
    manifest = json.loads((out / "predictions" / "model" / "manifest.json").read_text())
    assert manifest["info"]["tta"] == ["flip"]
    # The physics check ran on the model's predictions.
    qc = json.loads((out / "predictions" / "model" / "qc.json").read_text())
    assert len(qc["samples"]) == SIZES["tiny"].qc_samples
    # The report exists and references only files that exist, training curves included.
    page = result.report.read_text()
    refs = re.findall(r"""src=['"]([^'"]+)['"]""", page)
    assert "figures/training.png" in refs
    assert all((result.report.parent / ref).is_file() for ref in refs)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["size"] == "tiny" and "model_beats_baselines" in summary

    # A second run finds every stage finished and skips it.
    again: list[str] = []
    second = run_demo(out, size="tiny", device="cpu", echo=again.append, progress=False)
    assert all("skipped" in line for line in again)
    assert second.metrics == result.metrics
    # ... but refuses to mix sizes in one folder.
    from seisinv.errors import SeisinvError

    with pytest.raises(SeisinvError, match="holds a demo of size 'tiny'"):
        run_demo(out, size="small", device="cpu", echo=again.append, progress=False)


def test_unknown_size_is_refused(tmp_path):
    from seisinv.errors import SeisinvError

    with pytest.raises(SeisinvError, match="size 'huge'"):
        run_demo(tmp_path, size="huge")
