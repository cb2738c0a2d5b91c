"""``plastix bench sim --batch-size``: a batch of the bench network, each element checked against plain numpy
(noise drawn from the element's own counter-based stream), and the option's bad values."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from plastix.bench import lif_network, lif_numpy
from plastix.cli.main import main
from plastix.kernels.rng import host_batch_seed

SMALL = ("--neurons", "400", "--row-length", "40", "--steps", "150")


def _cli(*args):
    out = subprocess.run([sys.executable, "-m", "plastix.cli.main", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("deterministic", [True, False], ids=["deterministic", "noisy"])
def test_batch_elements_match_numpy(deterministic):
    flags = ("--deterministic",) if deterministic else ()
    out = _cli("bench", "sim", *SMALL, "--batch-size", "3", "--reference", "numpy", "--json", *flags)
    assert out["batch_size"] == 3 and out["deterministic"] is deterministic
    assert out["spikes_match"] is True and out["mismatched_elements"] == []
    counts = out["spikes_per_element"]
    assert len(counts) == 3 and sum(counts) == out["spikes"] == out["numpy_spikes"]
    assert out["numpy_runs"] == (1 if deterministic else 3)
    # events summed over the batch: every spike reaches row_length targets
    assert out["synaptic_events_per_s"] == pytest.approx(out["spikes"] * 40 / out["wall_s"])
    assert out["firing_fraction_per_step"] == pytest.approx(out["spikes"] / (400 * 150 * 3))
    if deterministic:
        assert len(set(counts)) == 1  # one noiseless network, three times
    # per element: neuron state and spike buffers scale with the neurons, not with the 16,000 synapses
    assert 0 < out["state_bytes_per_element"] < 400 * 64
    assert out["state_bytes_shared"] > 400 * 40 * 8  # targets and weights, one copy


def test_noise_streams_differ_between_elements():
    """What makes the noisy check above meaningful: elements' references are different runs."""
    net, values = lif_network.build(400, 40, seed=1)
    stream = lif_network.noise_stream(net)
    runs = [lif_numpy.simulate(values, 400, 150, noise=lif_numpy.Noise(host_batch_seed(1, b), stream))[1]
            for b in range(2)]
    quiet = lif_numpy.simulate(values, 400, 150)[1]
    assert not np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], quiet)


def test_batch_size_one_is_the_unbatched_output():
    out = _cli("bench", "sim", *SMALL, "--deterministic", "--reference", "numpy", "--json")
    assert out["batch_size"] == 1 and isinstance(out["spikes"], int) and out["spikes_match"] is True
    assert "spikes_per_element" not in out and "numpy_runs" not in out


@pytest.mark.parametrize("value", ["0", "-2", "65536", "two", "1.5"])
def test_bad_batch_size_is_one_line_error(value, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "sim", "--batch-size", value])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--batch-size" in err and "1..65535" in err and repr(value) in err


def test_parallel_flag_with_a_batch_is_an_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "sim", *SMALL, "--batch-size", "2", "--parallel", "off"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--parallel off" in err and "--batch-size 1" in err
