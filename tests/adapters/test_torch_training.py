"""logloss.torch in a training step: torch.compile captures it whole (no host sync), validate=False,
the saturated-probability warning, and the streaming torchmetrics metric, across two processes too."""

from __future__ import annotations

import math
import socket
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import logloss  # noqa: E402
import logloss.torch as lt  # noqa: E402

from ..reference import bce_logit, bce_probability  # noqa: E402

rng = np.random.default_rng(17)


# torch 2.13's dynamo instantiates autograd.Function classes itself and warns about it.
@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("criterion", [lt.BCEWithLogitsLoss(), lt.BCEWithLogitsLoss(pos_weight=torch.tensor(2.0)),
                                       lt.BCELoss()], ids=["logits", "pos_weight", "probabilities"])
def test_torch_compile_captures_the_loss_in_one_graph(criterion, dtype):
    # A host read-back (a value check, the warning) or a data-dependent branch would break the
    # graph, which fullgraph=True turns into an error: the CPU-testable proxy for "no sync".
    torch._dynamo.reset()
    z = torch.tensor(rng.normal(0, 3, 64), dtype=dtype)
    x = torch.sigmoid(z) if isinstance(criterion, lt.BCELoss) else z
    y = torch.tensor(rng.uniform(size=64) < 0.5, dtype=dtype)
    compiled = torch.compile(lambda a, b: criterion(a, b), fullgraph=True, backend="aot_eager")
    leaf = x.clone().requires_grad_(True)
    value = compiled(leaf, y)
    value.backward()
    # Compiled, the call stays in torch: the same numbers as the eager torch path (engine="numpy"
    # keeps eager calls off the compiled kernels)...
    eager_leaf = x.clone().requires_grad_(True)
    with logloss.config_context(engine="numpy"):
        eager = criterion(eager_leaf, y)
    eager.backward()
    assert float(value.detach()) == float(eager.detach())
    torch.testing.assert_close(leaf.grad, eager_leaf.grad, rtol=0, atol=0)
    # ...and within a few ulps of the kernels' eager numbers.
    kernel_leaf = x.clone().requires_grad_(True)
    kernel = criterion(kernel_leaf, y)
    kernel.backward()
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(value.detach(), kernel.detach(), rtol=2 * eps, atol=0)
    torch.testing.assert_close(leaf.grad, kernel_leaf.grad, rtol=4 * eps, atol=0)


def test_validate_false_reads_nothing_back_and_lets_nan_through():
    y = torch.tensor([1.0, 0.0, 1.0])
    z = torch.tensor([0.5, float("nan"), 2.0])
    with pytest.raises(ValueError, match="NaN"):
        lt.BCEWithLogitsLoss()(z, y)
    assert torch.isnan(lt.BCEWithLogitsLoss(validate=False)(z, y))
    assert torch.isnan(logloss.bce(y, z, from_logits=True, validate=False))
    # A label outside [0, 1] is not refused either: the formula is evaluated as written.
    assert torch.isfinite(logloss.bce(torch.tensor([2.0]), torch.tensor([0.5]), validate=False))
    with pytest.raises(ValueError, match="Invalid value for argument `validate`.*validate='no'"):
        logloss.bce(y, z, validate="no")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no InfiniteLossWarning without validation
        assert torch.isinf(lt.BCELoss(validate=False)(torch.tensor([0.0]), torch.tensor([1.0])))


def test_saturated_probability_is_infinite_and_the_warning_names_the_way_out():
    z = torch.tensor([-120.0, 1.0], requires_grad=True)
    p = torch.sigmoid(z)
    assert float(p[0].detach()) == 0.0  # float32 sigmoid(-120) rounds to 0
    y = torch.tensor([1.0, 0.0])
    with pytest.warns(logloss.InfiniteLossWarning) as caught:
        loss = lt.BCELoss()(p, y)
    assert torch.isposinf(loss)  # the exact answer is kept
    message = str(caught[0].message)
    assert "1 of 2 samples have infinite loss" in message
    assert "BCEWithLogitsLoss" in message and "clip=" in message
    loss.backward()
    assert torch.isnan(z.grad[0])
    # The two ways out: the logits loss is finite with a finite gradient; clip bounds the loss.
    z.grad = None
    finite = lt.BCEWithLogitsLoss()(z, y)
    finite.backward()
    assert float(finite.detach()) == pytest.approx((120 + math.log1p(math.exp(-120)) + math.log1p(math.e)) / 2, rel=1e-6)
    assert torch.all(torch.isfinite(z.grad))
    assert torch.isfinite(lt.BCELoss(clip=1e-7)(torch.sigmoid(z), y))


# ---------------------------------------------------------------------------------------------
# The streaming metric


def _reference(y, x, weight, from_logits):
    import mpmath

    function = bce_logit if from_logits else bce_probability
    total = mpmath.fsum(mpmath.mpf(float(w)) * function(a, b) for a, b, w in zip(y, x, weight))
    return float(total / mpmath.fsum(mpmath.mpf(float(w)) for w in weight))


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
def test_metric_is_the_exact_weighted_mean_of_every_batch(from_logits):
    pytest.importorskip("torchmetrics")
    import torchmetrics

    metric = lt.BinaryCrossEntropy(from_logits=from_logits)
    assert isinstance(metric, torchmetrics.Metric)
    n = 3000
    # (A loss of ~1e7 among losses of ~1: a plain float64 running sum loses their last digits.)
    extremes = [4e7, -40.0, 1e-12, -700.0] if from_logits else [15.0, -30.0, 1e-12, -80.0]
    z = np.concatenate([rng.normal(0, 4, n - 4), extremes])
    x = z if from_logits else 1 / (1 + np.exp(-z))
    y = rng.uniform(size=n)
    w = rng.uniform(0, 3, n)
    w[-4] = 1.0
    for start in range(0, n, 700):
        part = slice(start, start + 700)
        metric.update(torch.tensor(x[part], dtype=torch.float32), torch.tensor(y[part]), torch.tensor(w[part]))
    x32 = torch.tensor(x, dtype=torch.float32).double().numpy()  # the values the metric saw
    result = metric.compute()
    assert result.dtype == torch.float64
    assert float(result) == pytest.approx(_reference(y, x32, w, from_logits), rel=2**-52)
    metric.reset()
    metric.update(torch.tensor([0.5]), torch.tensor([1.0]))
    expected = math.log1p(math.exp(-0.5)) if from_logits else math.log(2)
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-15)


def test_metric_forward_gives_the_batch_value_and_keeps_the_total():
    pytest.importorskip("torchmetrics")
    metric = lt.BinaryCrossEntropy()
    first = metric(torch.tensor([0.9, 0.2], dtype=torch.float64), torch.tensor([1.0, 0.0]))
    assert float(first) == pytest.approx(-(math.log(0.9) + math.log(0.8)) / 2, rel=1e-15)
    metric(torch.tensor([0.5], dtype=torch.float64), torch.tensor([1.0]))
    assert float(metric.compute()) == pytest.approx(-(math.log(0.9) + math.log(0.8) + math.log(0.5)) / 3, rel=1e-15)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, port, shards, out):
    import datetime

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=60))
    try:
        metric = lt.BinaryCrossEntropy(from_logits=True)
        y, z = shards[rank]
        for start in range(0, len(z), 250):
            metric.update(torch.tensor(z[start:start + 250]), torch.tensor(y[start:start + 250]))
        value = metric.compute()  # torchmetrics gathers both states and merges them
        torch.save(value, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_metric_synchronizes_across_two_processes(tmp_path):
    pytest.importorskip("torchmetrics")
    import torch.multiprocessing as mp

    y = rng.uniform(size=1600)
    z = rng.normal(0, 5, 1600) * 10.0 ** rng.uniform(-3, 1, 1600)
    z[[10, 1200]] = [3e12, -5e11]  # huge losses among small ones: a plain sum would lose digits
    y[[10, 1200]] = [0.25, 0.5]
    shards = [(y[:1000], z[:1000]), (y[1000:], z[1000:])]  # unequal shards
    context = mp.start_processes(_worker, args=(_free_port(), shards, str(tmp_path)), nprocs=2,
                                 join=False, start_method="spawn")
    deadline = 120.0
    import time

    start = time.monotonic()
    while not context.join(timeout=5):
        if time.monotonic() - start > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two gloo processes did not finish within 120 s")
    expected = _reference(y, z, np.ones_like(y), True)
    for rank in (0, 1):
        value = torch.load(tmp_path / f"rank{rank}.pt")
        assert float(value) == pytest.approx(expected, rel=2**-52)
