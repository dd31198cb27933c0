"""Weighted test-time augmentation views."""

from __future__ import annotations

import numpy as np
import pytest

from seisinv.errors import SeisinvError
from seisinv.inference.predict import predict_batch
from seisinv.inference.tta import View, parse_tta, tta_views, tta_weights


class MeanRun:
    """Predicts a constant map equal to the gathers' mean (so a view's scaling shows through)."""

    def predict(self, gathers):
        return np.broadcast_to(gathers.mean(axis=(1, 2, 3))[:, None, None], (len(gathers), 2, 3))


def test_parse_weights_and_canonical_form():
    assert tta_weights("flip:1,noise:0.5") == {"flip": 1.0, "noise": 0.5}
    assert tta_weights({"scale": 2}) == {"scale": 2.0}
    assert parse_tta("flip,noise:0.5,identity:0") == ["flip", "noise:0.5", "identity:0"]
    assert parse_tta("flip:1,noise") == ["flip", "noise"]  # weight 1 is the plain name
    for bad, message in (("flip:-1", ">= 0"), ("flip:x", ">= 0"), ("flip,flip:2", "twice"),
                         ("mirror:1", "unknown test-time augmentation 'mirror'")):
        with pytest.raises(SeisinvError, match=message):
            parse_tta(bad)
    with pytest.raises(SeisinvError, match="weight 0"):
        tta_views("identity:0", None)


def test_views_carry_their_weights(tiny_survey):
    views = tta_views("flip:2,noise:0.5,identity:0.25", tiny_survey)
    assert [(v.name, v.weight) for v in views] == [
        ("identity", 0.25), ("flip", 2.0), ("noise-0", 0.5), ("noise-1", 0.5)]
    assert [v.name for v in tta_views("scale,identity:0", tiny_survey)] == ["scale-0.9", "scale-1.1"]


def test_predict_batch_is_the_weighted_mean_of_views():
    gathers = np.ones((2, 1, 4, 3), np.float32)
    same = lambda a, *_: a  # noqa: E731
    views = [View("a", same, same, 1.0), View("b", lambda g, ids: g * 3, same, 3.0)]
    out = predict_batch(MeanRun(), gathers, ["x", "y"], views)
    np.testing.assert_allclose(out, (1 * 1 + 3 * 3) / 4)
    unweighted = [View("a", same, same), View("b", lambda g, ids: g * 3, same)]
    np.testing.assert_allclose(predict_batch(MeanRun(), gathers, ["x", "y"], unweighted), 2.0)
