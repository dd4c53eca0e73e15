import numpy as np
import pytest

from tfzoo.evaluation.intervals import minimum_detectable_effect, paired_bootstrap


def test_interval_covers_a_known_paired_difference_and_excludes_zero():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, size=2000)
    better = base + 0.05 + rng.normal(0, 0.1, size=2000)  # true mean difference 0.05
    interval = paired_bootstrap(better, base, seed=0)
    assert interval["difference"] == pytest.approx(np.mean(better - base))
    assert interval["low"] < 0.05 < interval["high"] and interval["low"] > 0
    # Standard error of the mean difference: 0.1 / sqrt(2000) = 0.0022; the 95% interval
    # is about +-1.96 of it.
    assert interval["high"] - interval["low"] == pytest.approx(2 * 1.96 * 0.1 / np.sqrt(2000), rel=0.15)


def test_runs_are_averaged_before_resampling_users_and_noise_alone_straddles_zero():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0, 1, size=(3, 500)), rng.uniform(0, 1, size=(3, 500))
    interval = paired_bootstrap(a, b, seed=0)
    assert interval["difference"] == pytest.approx(np.mean(a.mean(0) - b.mean(0)))
    assert interval["low"] < 0 < interval["high"]


def test_minimum_detectable_effect_is_2_8_standard_errors():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, size=400), rng.normal(0, 1, size=400)
    assert minimum_detectable_effect(a, b) == pytest.approx(2.8 * np.std(a - b, ddof=1) / 20)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="same, non-empty"):
        paired_bootstrap(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="confidence=1.5"):
        paired_bootstrap(np.zeros(3), np.zeros(3), confidence=1.5)
