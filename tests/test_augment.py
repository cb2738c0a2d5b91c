"""Training-batch augmentation: what each transform does to a batch, its errors, and exact resume of a
training run that uses it."""
import numpy as np
import pytest

from plastix.datasets import augment
from plastix.datasets.base import DatasetError, SpikeDataset


def _batch(seed=0, shape=(64, 30, 5), p=0.3):
    rng = np.random.default_rng(seed)
    return (rng.random(shape) < p).astype(np.uint8) * rng.integers(1, 4, shape).astype(np.uint8)


def _shifted(x, s):
    """Reference: x moved s steps later (s < 0: earlier), zero-filled."""
    out = np.zeros_like(x)
    steps = x.shape[0]
    for t in range(steps):
        if 0 <= t + s < steps:
            out[t + s] = x[t]
    return out


def test_time_shift_moves_each_sample_by_its_own_bounded_shift():
    x = _batch()
    before = x.copy()
    y = augment.time_shift(3)(x, np.random.default_rng(1))
    np.testing.assert_array_equal(x, before)   # the input is not modified
    assert y.shape == x.shape and y.dtype == x.dtype
    shifts = []
    for b in range(x.shape[0]):
        matches = [s for s in range(-3, 4) if np.array_equal(y[b], _shifted(x[b], s))]
        assert matches, f"sample {b} is not a shift of its input by at most 3 steps"
        shifts.append(matches[0])
    assert min(shifts) < 0 < max(shifts)   # both directions occur over 64 samples
    np.testing.assert_array_equal(augment.time_shift(0)(x, np.random.default_rng(1)), x)
    # shifts as long as the trial or longer empty the sample, never fail
    short = x[:, :3]
    y = augment.time_shift(5)(short, np.random.default_rng(2))
    for b in range(short.shape[0]):
        assert any(np.array_equal(y[b], _shifted(short[b], s)) for s in range(-5, 6))


def test_drop_spikes_keeps_a_binomial_share_of_every_count():
    x = _batch(shape=(200, 50, 20))
    y = augment.drop_spikes(0.25)(x, np.random.default_rng(2))
    assert y.dtype == x.dtype and np.all(y <= x)
    kept = y.sum() / x.sum()
    sd = np.sqrt(0.25 * 0.75 / x.sum())
    assert abs(kept - 0.75) < 5 * sd, kept
    # counts above 1 keep a part, not all or nothing
    big = x >= 3
    assert np.any((y[big] > 0) & (y[big] < x[big]))
    np.testing.assert_array_equal(augment.drop_spikes(0.0)(x, np.random.default_rng(2)), x)


def test_chain_applies_in_order_and_describes_itself():
    x = _batch()
    a = augment.chain(augment.time_shift(2), augment.drop_spikes(0.5))
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    expected = augment.drop_spikes(0.5)(augment.time_shift(2)(x, rng_b), rng_b)
    np.testing.assert_array_equal(a(x, rng_a), expected)
    assert a.to_dict() == {"chain": [{"time_shift": {"max_steps": 2}}, {"drop_spikes": {"probability": 0.5}}]}


@pytest.mark.parametrize("make, match", [
    (lambda: augment.time_shift(-1), "max_steps must be an integer >= 0"),
    (lambda: augment.time_shift(1.5), "max_steps must be an integer >= 0"),
    (lambda: augment.drop_spikes(1.0), r"probability must be in \[0, 1\)"),
    (lambda: augment.drop_spikes(-0.1), r"probability must be in \[0, 1\)"),
    (lambda: augment.chain(lambda x, r: x), "is not an augmentation"),
    (lambda: augment.time_shift(1)(np.zeros((3, 4)), np.random.default_rng()),
     r"dense batch \[samples, steps, units\]"),
])
def test_bad_augmentation_settings_are_named(make, match):
    with pytest.raises(DatasetError, match=match):
        make()


def test_training_with_augmentation_resumes_exactly(tmp_path):
    from plastix import datasets
    from plastix.learning.eprop import EPropConfig, TrainingError
    from plastix.learning.trainer import Trainer

    ds = datasets.load("digits")
    small = SpikeDataset("s", ds.train.subset(np.arange(96)), ds.test.subset(np.arange(64)), {})
    c = EPropConfig(num_inputs=small.train.num_units, num_outputs=10, num_hidden=16, input_density=0.5,
                    recurrent_density=0.5, rewiring="deep-r", lr=3e-3, seed=4)
    aug = augment.chain(augment.time_shift(2), augment.drop_spikes(0.2))
    straight = Trainer(c, small, batch_size=32, out_dir=tmp_path / "a", progress=False, augment=aug)
    straight.fit(2)
    plain = Trainer(c, small, batch_size=32, progress=False)
    plain.fit(2)
    assert not np.array_equal(straight.net.w_out, plain.net.w_out)   # the augmentation reached training
    Trainer(c, small, batch_size=32, out_dir=tmp_path / "b", progress=False, augment=aug).fit(1)
    resumed = Trainer(c, small, batch_size=32, out_dir=tmp_path / "b", progress=False, augment=aug)
    res = resumed.fit(2, resume=True)
    np.testing.assert_array_equal(straight.net.w_out, resumed.net.w_out)
    for p in resumed.net.projections:
        np.testing.assert_array_equal(straight.net.sim.ragged(p, "w")["w"], resumed.net.sim.ragged(p, "w")["w"])
    assert res["augment"] == aug.to_dict()
    other = Trainer(c, small, batch_size=32, out_dir=tmp_path / "b", progress=False, augment=augment.time_shift(2))
    with pytest.raises(TrainingError, match="different augment"):
        other.fit(3, resume=True)
    with pytest.raises(TrainingError, match="augment must be"):
        Trainer(c, small, progress=False, augment="shift")
