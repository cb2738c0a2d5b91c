"""SD-SNN training (plastix.learning.sdsnn) on a small conv network: the sparse mode's invariants after
every structure step (pruned units have no synapses in or out, masked kernel entries have no synapses, the
per-synapse state and the column view agree with the rows), the faithful mode's masks, exact resume, the
CLI's outputs and its errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from plastix.cli.main import main
from plastix.datasets import BernoulliFrames, FrameDataset
from plastix.learning.bptt import BPTTError
from plastix.learning.sdsnn import SDSNNSettings, SDSNNTrainer

LAYERS = "conv2-pool2-conv8-pool2-fc12-fc10"   # 10 classes: the CLI test (digits) shares the compiled code


def _dataset(n_train=40, n_test=12, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n_train + n_test)   # 3 of the 10 classes occur
    images = rng.integers(0, 120, (n_train + n_test, 1, 8, 8))
    for c in range(3):   # a class-dependent bright block, so the task is learnable
        images[labels == c, 0, 2 * c:2 * c + 3, 1:6] += 130
    tr = BernoulliFrames(images[:n_train], labels[:n_train], steps=6, num_classes=10, seed=seed)
    te = BernoulliFrames(images[n_train:], labels[n_train:], steps=6, num_classes=10, seed=seed, split_key=1)
    return FrameDataset("blocks", tr, te)


def _trainer(mode, out_dir=None, epochs=3, **kw):
    s = SDSNNSettings(dataset="digits", mode=mode, epochs=epochs, batch_size=8, structure_every=1,
                      schedule_scale=1 / 6, layers=LAYERS, dtype="float64", **kw)
    return SDSNNTrainer(s, out_dir=out_dir, progress=False, dataset=_dataset())


def _check_sparse_invariants(tr: SDSNNTrainer) -> None:
    sim, sd = tr.net.sim, tr.sd
    for name in ("fc1", "fc2", "conv2"):
        r = sim.ragged(f"{name}_syn")
        ind, rl = r["ind"], r["row_length"]
        assert np.all(rl <= ind.shape[1])
        for i in range(ind.shape[0]):   # no duplicate targets in a row
            assert len(set(ind[i, :rl[i]].tolist())) == rl[i]
        pre, post = sim.connectivity(f"{name}_syn")
        assert pre.size == rl.sum()
    fc1 = sd.layers["fc1"]
    dead = np.flatnonzero(fc1.dead)
    _, post_in = sim.connectivity("fc1_syn")
    pre_out, _ = sim.connectivity("fc2_syn")
    assert not np.isin(dead, post_in).any(), "a dead fc1 neuron still has incoming synapses"
    assert not np.isin(dead, pre_out).any(), "a dead fc1 neuron still has outgoing synapses"
    assert np.all(sim.get("fc1", "bias")[dead] == 0.0)
    # every fc1 synapse carries its own spine state: r- <= w <= r+ once clipping runs, r- < r+ always
    rp, rm = sim.get("fc1_syn_sdsnn", "r_plus"), sim.get("fc1_syn_sdsnn", "r_minus")
    assert rp.size == post_in.size and np.all(rm < rp)
    conv = sd.layers["conv2"]
    mask = conv.storage.vars["mask"]
    kidx = sim.get("conv2_syn", "kidx")
    assert np.all(mask[kidx] == 1), "a masked kernel entry still has synapses"
    k, _ = tr.net.conv_parameters("conv2")
    assert np.all(k.ravel()[mask == 0] == 0.0)
    w = sim.get("conv2_syn", "w")
    np.testing.assert_array_equal(w, k.ravel()[kidx])


def test_sparse_mode_prunes_for_real_and_keeps_its_invariants():
    tr = _trainer("sparse", epochs=2)
    steps = []
    orig = tr.structure_step

    def checked():
        row = orig()
        _check_sparse_invariants(tr)
        steps.append(row)
        return row

    tr.structure_step = checked
    res = tr.fit()
    assert len(steps) == 10   # 5 batches per epoch, one step after each
    assert tr.compression()["total"] > 0.1, "the development should have pruned by step 9 (pruning from step 7)"
    last = res["epochs"][-1]
    assert last["synapses"]["fc1_syn"] < 32 * 12   # fewer than it started with
    assert last["neurons"]["fc1"] < 12
    assert set(last) >= {"test_accuracy", "compression", "neurons", "epoch_s", "synapses"}


def test_faithful_mode_masks_and_keeps_every_synapse():
    tr = _trainer("faithful", epochs=2)
    tr.fit()
    sim = tr.net.sim
    assert sim.connectivity("fc1_syn")[0].size == 32 * 12   # every synapse kept
    mask = sim.get("fc1_syn_sdsnn", "mask")
    assert (mask == 0).any(), "the faithful mode should have masked fc1 synapses by step 9"
    # the masks were applied after the last structure step: masked weights are 0 (they train again after)
    w = sim.get("fc1_syn", "w")
    assert tr.compression()["fc1"] == pytest.approx(np.count_nonzero(w == 0) / w.size)


def test_resume_continues_exactly(tmp_path):
    full = _trainer("sparse", out_dir=str(tmp_path / "full"), epochs=2)
    full.fit()
    part = _trainer("sparse", out_dir=str(tmp_path / "part"), epochs=1)
    part.fit()
    again = _trainer("sparse", out_dir=str(tmp_path / "part"), epochs=2)
    again.fit(resume=True)
    a, b = full.results["epochs"][-1], again.results["epochs"][-1]
    assert a["test_accuracy"] == b["test_accuracy"] and a["train_loss"] == b["train_loss"]
    assert a["synapses"] == b["synapses"]
    np.testing.assert_array_equal(full.net.sim.get("fc1_syn", "w"), again.net.sim.get("fc1_syn", "w"))
    np.testing.assert_array_equal(full.net.conv_parameters("conv2")[0], again.net.conv_parameters("conv2")[0])


def test_settings_errors_name_the_problem():
    with pytest.raises(BPTTError, match="mode must be one of"):
        SDSNNSettings(mode="dense")
    with pytest.raises(BPTTError, match="dataset must be one of"):
        SDSNNSettings(dataset="cifar")
    with pytest.raises(BPTTError, match="no \\['conv2'\\]"):
        s = SDSNNSettings(dataset="digits", mode="sparse", layers="conv2-pool2-fc12-fc10")
        SDSNNTrainer(s, progress=False, dataset=_dataset())
    with pytest.raises(BPTTError, match="fewer than SD-SNN's K"):
        s = SDSNNSettings(dataset="digits", mode="sparse", layers="conv2-pool2-conv4-pool2-fc12-fc10")
        SDSNNTrainer(s, progress=False, dataset=_dataset())


def test_cli_writes_results_and_reports_the_summary(tmp_path, capsys):
    out = tmp_path / "run"
    main(["sdsnn", "--dataset", "digits", "--mode", "sparse", "--epochs", "1", "--train-limit", "60",
          "--test-limit", "30", "--layers", "conv2-pool2-conv8-pool2-fc12-fc10", "--batch-size", "20",
          "--structure-every", "1", "--schedule-scale", "0.17", "--precision", "float64", "--out", str(out),
          "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"test_accuracy", "compression", "neurons", "epoch_s", "compile_s"} <= set(summary)
    assert 0.0 <= summary["compression"] <= 1.0 and len(summary["epoch_s"]) == 1
    res = json.loads((out / "results.json").read_text())
    assert len(res["epochs"]) == 1 and len(res["structure_steps"]) == 3
    assert (out / "sdsnn.png").exists()


def test_cli_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["sdsnn", "--dataset", "fashion_mnist", "--data-dir", str(tmp_path), "--epochs", "1"])
    assert "fashion" in capsys.readouterr().err.lower()
    with pytest.raises(SystemExit):
        main(["sdsnn", "--resume", "--out", str(tmp_path / "none")])
    assert "no checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sdsnn", "--layers", "conv2-fc", "--epochs", "1"])
    err = capsys.readouterr().err
    assert "conv2-fc" in err or "not conv" in err


def test_kernel_probe_equals_the_engines_kernel_gradient():
    """The sparse mode's dense conv probe (a correlation of the tapes) against the engine's event-driven
    kernel gradient, with every kernel entry present (so both must agree)."""
    from plastix.learning.sdsnn import kernel_probe

    tr = _trainer("none")
    net, ds = tr.net, tr.dataset.train
    for L in net.layers:   # stronger weights than the default init, so that gradient reaches conv2
        if L.kind == "conv":
            k, b = net.conv_parameters(L.name)
            net.set_conv_parameters(L.name, 3.0 * k, b)
        elif L.kind == "fc":
            net.set_dense_weights(L.name, 3.0 * net.dense_weights(L.name))
    batch = next(ds.batches(net.batch_size, seed=3, epoch=0))
    x = batch.spikes.reshape(len(batch.labels), tr.config.steps, -1)
    grads = net.gradients(x, batch.labels)
    layer = net.layer("conv2")
    probe = kernel_probe(layer, net.sim.tape("pool1", "cnt"), net.sim.tape("conv2", "du"))
    assert np.abs(grads["conv2"]["kernel"]).max() > 1e-6
    np.testing.assert_allclose(probe, grads["conv2"]["kernel"], rtol=1e-9, atol=1e-12)
