"""torch eager CPU calls without options go to the NumPy engine's compiled kernels (loss and
gradient in one pass, zero-copy): exact against mpmath, the same errors and warnings as the torch
path, torch.autograd.gradcheck, and torch.compile still captures the pure-torch path."""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import logloss  # noqa: E402
import logloss.torch as lt  # noqa: E402
from logloss._numpy.chunked import compiled_kernels  # noqa: E402

from ..reference import bce_logit, bce_probability, max_ulp_error  # noqa: E402

pytestmark = pytest.mark.skipif(compiled_kernels() is None, reason="the compiled kernels were not built")

DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
LOGITS = [0.0, 1e-30, 1e-8, 0.5, 1.0, 17.0, 33.5, 36.0, 40.0, 88.7, 103.0, 300.0, 689.0, 700.0, 709.5, 745.5,
          1000.0, 1e30]
PROBABILITIES = {
    torch.float32: [0.0, 1e-40, 1e-30, 1e-8, 0.25, 0.5, 0.75, 1 - 2.0**-24, 1 - 2.0**-12, 1.0],
    torch.float64: [0.0, 1e-300, 1e-30, 1e-8, 0.25, 0.5, 0.75, 1 - 2.0**-53, 1 - 2.0**-30, 1.0],
}


def _through_kernel(loss):
    return type(loss.grad_fn).__name__ == "_KernelLossBackward"


def _sigmoid_minus_label(y, z):
    # sigmoid(z) - y = (1 - y) sigmoid(z) - y sigmoid(-z): no cancellation at 256 bits either
    y, z = mpmath.mpf(float(y)), mpmath.mpf(float(z))
    return (1 - y) / (1 + mpmath.exp(-z)) - y / (1 + mpmath.exp(z))


def _probability_grad(y, p):
    y, p = mpmath.mpf(float(y)), mpmath.mpf(float(p))
    terms = [-y / p if y else 0, (1 - y) / (1 - p) if y != 1 else 0]
    return sum(terms)


def _logit_cases(dtype, soft):
    z = np.array([s * v for v in LOGITS for s in (1, -1)], dtype=DTYPES[dtype])
    labels = [0.0, 1.0] + ([0.1, 0.37, 0.9] if soft else [])
    y = np.repeat(np.array(labels), z.size)
    return torch.tensor(y, dtype=dtype), torch.tensor(np.tile(z, len(labels)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logits_loss_and_gradient_within_1_ulp_of_mpmath(dtype):
    # float64 results take hard labels only (soft ones go to the double-double torch path).
    y, z = _logit_cases(dtype, soft=dtype == torch.float32)
    leaf = z.clone().requires_grad_(True)
    losses = logloss.bce(y, leaf, from_logits=True, reduction="none")
    assert _through_kernel(losses)
    exact = [bce_logit(a, b) for a, b in zip(y.tolist(), z.tolist())]
    assert max_ulp_error(losses.detach().numpy(), exact, DTYPES[dtype]) <= 1
    total = logloss.bce(y, leaf, from_logits=True, reduction="sum")
    assert _through_kernel(total)
    total.backward()
    gradient = [_sigmoid_minus_label(a, b) for a, b in zip(y.tolist(), z.tolist())]
    # float64: the exp and one division, a few ulps (torch's own sigmoid is as close).
    assert max_ulp_error(leaf.grad.numpy(), gradient, DTYPES[dtype]) <= (1 if dtype == torch.float32 else 4)
    assert float(total.detach()) == pytest.approx(float(mpmath.fsum(exact)), rel=4 * torch.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_probabilities_loss_and_gradient_within_1_ulp_of_mpmath(dtype):
    p = np.array(PROBABILITIES[dtype], dtype=DTYPES[dtype])
    labels = [0.0, 1.0] + ([0.2, 0.5] if dtype == torch.float32 else [])
    y = np.repeat(np.array(labels), p.size)
    p = np.tile(p, len(labels))
    exact = [bce_probability(a, b) for a, b in zip(y, p.tolist())]
    finite = np.array([mpmath.isfinite(e) for e in exact])  # an infinite loss goes to the torch path
    y, p = torch.tensor(y[finite], dtype=dtype), torch.tensor(p[finite])
    exact = [e for e, keep in zip(exact, finite) if keep]
    leaf = p.clone().requires_grad_(True)
    losses = logloss.bce(y, leaf, reduction="none")
    assert _through_kernel(losses)
    assert max_ulp_error(losses.detach().numpy(), exact, DTYPES[dtype]) <= 1
    mean = logloss.bce(y, leaf)
    assert _through_kernel(mean)
    mean.backward()
    gradient = [_probability_grad(a, b) / y.numel() for a, b in zip(y.tolist(), p.tolist())]
    assert max_ulp_error(leaf.grad.numpy(), gradient, DTYPES[dtype]) <= (1 if dtype == torch.float32 else 2)


@pytest.mark.parametrize("from_logits", [True, False])
def test_kernel_and_torch_paths_agree_on_random_data(from_logits):
    rng = np.random.default_rng(5)
    for dtype in (torch.float32, torch.float64):
        z = torch.tensor(rng.normal(0, 4, 5000), dtype=dtype)
        x = z if from_logits else torch.sigmoid(z)
        y = torch.tensor(rng.uniform(size=5000) < 0.3, dtype=dtype)
        leaf = x.clone().requires_grad_(True)
        ours = (lt.BCEWithLogitsLoss() if from_logits else lt.BCELoss())(leaf, y)
        ours.backward()
        assert _through_kernel(ours)
        torch_leaf = x.clone().requires_grad_(True)
        with logloss.config_context(engine="numpy"):
            theirs = (lt.BCEWithLogitsLoss() if from_logits else lt.BCELoss())(torch_leaf, y)
        theirs.backward()
        assert not _through_kernel(theirs)
        eps = torch.finfo(dtype).eps
        torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=2 * eps, atol=0)
        torch.testing.assert_close(leaf.grad, torch_leaf.grad, rtol=4 * eps, atol=4 * eps / 5000)


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck_float64(from_logits, reduction):
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, 40)
    x = torch.tensor(z if from_logits else 1 / (1 + np.exp(-z)), dtype=torch.float64, requires_grad=True)
    y = torch.tensor(rng.uniform(size=40) < 0.5, dtype=torch.float64)

    def loss(x_):
        return logloss.bce(y, x_, from_logits=from_logits, reduction=reduction)

    assert _through_kernel(loss(x))
    assert torch.autograd.gradcheck(loss, (x,))
    # create_graph=True: the backward recomputes the gradient with differentiable operations.
    assert torch.autograd.gradgradcheck(loss, (x,))


def test_inference_goes_through_the_kernel_and_matches_training():
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    z = torch.tensor([-3.0, 2.5, 40.0, 0.125])
    with torch.no_grad():
        inferred = lt.BCEWithLogitsLoss()(z, y)
    trained = lt.BCEWithLogitsLoss()(z.clone().requires_grad_(True), y)
    assert inferred.grad_fn is None and _through_kernel(trained)
    assert float(inferred) == float(trained.detach())
    assert inferred.dtype == torch.float32 and inferred.dim() == 0


def _error(call):
    with pytest.raises(ValueError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_invalid_input_gets_the_same_error_as_numpy(dtype):
    cases = [
        (np.array([1.0, 0.0, 1.0]), np.array([0.5, np.nan, 2.0]), True),
        (np.array([1.0, 2.0, 1.0]), np.array([0.5, 0.1, 2.0]), True),
        (np.array([1.0, 0.0, -0.5]), np.array([0.5, 0.2, 0.3]), False),
        (np.array([1.0, 0.0, 1.0]), np.array([0.5, 1.5, 0.3]), False),
        (np.array([1.0, 0.0, 1.0]), np.array([0.5, np.nan, 0.3]), False),
    ]
    for y, x, from_logits in cases:
        expected = _error(lambda: logloss.bce(y, x, from_logits=from_logits))
        leaf = torch.tensor(x, dtype=dtype, requires_grad=True)
        target = torch.tensor(y, dtype=dtype)
        assert _error(lambda: logloss.bce(target, leaf, from_logits=from_logits)) == expected
        with torch.no_grad():
            assert _error(lambda: logloss.bce(target, leaf, from_logits=from_logits, reduction="none")) == expected


def test_an_infinite_loss_still_warns_and_is_infinite():
    y = torch.tensor([1.0, 0.0])
    p = torch.tensor([0.0, 0.25], requires_grad=True)
    with pytest.warns(logloss.InfiniteLossWarning, match="clip=1e-7"):
        loss = lt.BCELoss()(p, y)
    assert torch.isinf(loss) and not _through_kernel(loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.isinf(lt.BCELoss(validate=False)(p, y))


def test_a_sum_past_float32_range_is_inf_as_on_numpy():
    # Finite losses whose sum overflows float32: inf, no InfiniteLossWarning (no loss is infinite).
    expected = logloss.bce(np.zeros(3), np.full(3, 3e38, np.float32), from_logits=True, reduction="sum")
    z = torch.full((3,), 3e38, requires_grad=True)
    total = logloss.bce(torch.zeros(3), z, from_logits=True, reduction="sum")
    assert np.isinf(expected) and torch.isinf(total)
    total.backward()
    assert torch.equal(z.grad, torch.ones(3))


def test_non_contiguous_and_label_gradients_take_the_torch_path():
    z = torch.linspace(-5, 5, 20, requires_grad=True)
    y = (torch.arange(20) % 2).float()
    strided = logloss.bce(y[::2], z[::2], from_logits=True)
    assert not _through_kernel(strided)
    soft = y.clone().requires_grad_(True)
    with_labels = logloss.bce(soft, z, from_logits=True)
    assert not _through_kernel(with_labels)
    with_labels.backward()
    assert soft.grad is not None
    with logloss.config_context(engine="numpy"):
        assert not _through_kernel(logloss.bce(y, z, from_logits=True))


@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
def test_fullgraph_compile_of_a_reduction_none_call():
    torch._dynamo.reset()
    z = torch.linspace(-8, 8, 32, dtype=torch.float64)
    y = (torch.arange(32) % 3 == 0).double()
    compiled = torch.compile(lambda a, b: logloss.bce(b, a, from_logits=True, reduction="none").sum(),
                             fullgraph=True, backend="aot_eager")
    leaf = z.clone().requires_grad_(True)
    compiled(leaf, y).backward()
    eager = z.clone().requires_grad_(True)
    logloss.bce(y, eager, from_logits=True, reduction="none").sum().backward()
    torch.testing.assert_close(leaf.grad, eager.grad, rtol=4 * torch.finfo(torch.float64).eps, atol=0)


def test_repeated_backward_does_not_change_the_saved_gradient():
    # backward() hands back the saved gradient itself when grad_output is 1: autograd must copy it
    # into .grad, never accumulate into it.
    z = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0])
    loss = logloss.bce(y, z, from_logits=True)
    assert _through_kernel(loss)
    loss.backward(retain_graph=True)
    once = z.grad.clone()
    loss.backward(retain_graph=True)
    loss.backward()
    torch.testing.assert_close(z.grad, 3 * once, rtol=0, atol=0)
    z.grad = None
    (2 * logloss.bce(y, z, from_logits=True)).backward()
    torch.testing.assert_close(z.grad, 2 * once, rtol=0, atol=0)


@pytest.mark.parametrize("view", [
    lambda w: w.squeeze(1),
    lambda w: w.view(3),
    lambda w: w.reshape(3),
    lambda w: w[:, 0],
])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_retained_graph_backward_through_a_view_of_the_leaf(view, reduction):
    # The first backward hands out the saved gradient; a view of it (squeeze, view, indexing) is
    # stolen by AccumulateGrad as the leaf's .grad, so accumulating or zeroing .grad wrote into the
    # saved gradient and the next backward of the retained graph raised (or would have been wrong).
    y = torch.tensor([1.0, 0.0, 1.0])
    w = torch.tensor([[0.5], [-1.0], [2.0]], requires_grad=True)
    loss = logloss.bce(y, view(w), from_logits=True, reduction=reduction)
    assert _through_kernel(loss)
    loss.backward(retain_graph=True)
    once = w.grad.clone()
    loss.backward(retain_graph=True)
    loss.backward(retain_graph=True)
    torch.testing.assert_close(w.grad, 3 * once, rtol=0, atol=0)
    w.grad.zero_()  # optimizer.zero_grad(set_to_none=False)
    loss.backward(retain_graph=True)
    torch.testing.assert_close(w.grad, once, rtol=0, atol=0)
    w.grad = None
    loss.backward(gradient=torch.tensor(2.0))
    torch.testing.assert_close(w.grad, 2 * once, rtol=0, atol=0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_float32_soft_label_gradient_near_its_zero_within_1_ulp_of_mpmath(reduction):
    # sigmoid(z) - y cancels where sigmoid(z) is near the soft label (a converged soft target):
    # the float32 kernel's short exp (2^-37 relative, 1e-12 absolute) was more than the whole
    # derivative, millions of ulps off and sometimes of the wrong sign.
    labels = np.array([0.05, 0.1, 0.3, 0.37, 0.5, 0.6, 0.77, 0.9, 0.99], dtype=np.float32)
    center = np.log(labels.astype(np.float64) / (1 - labels.astype(np.float64))).astype(np.float32)
    z, below, above = [center], center, center
    for _ in range(3):  # a few float32 ulps either side of logit(y)
        below, above = np.nextafter(below, np.float32(-np.inf)), np.nextafter(above, np.float32(np.inf))
        z += [below, above]
    z = np.concatenate(z)
    y = np.tile(labels, 7)
    leaf = torch.tensor(z, requires_grad=True)
    loss = logloss.bce(torch.tensor(y), leaf, from_logits=True, reduction=reduction)
    assert _through_kernel(loss)
    (loss.sum() if reduction == "none" else loss).backward()
    scale = z.size if reduction == "mean" else 1
    exact = [_sigmoid_minus_label(a, b) / scale for a, b in zip(y.tolist(), z.tolist())]
    # Where the derivative is above 1e-9 of a gradient step a float64 evaluation's 1e-17 is below
    # a tenth of a float32 ulp; closer to zero only float64 conditioning is asked of it.
    big = np.array([abs(e) * scale > 1e-9 for e in exact])
    assert big.sum() > z.size // 2
    assert max_ulp_error(leaf.grad.numpy()[big], [e for e, b in zip(exact, big) if b], np.float32) <= 1
    small = leaf.grad.numpy()[~big].astype(np.float64) - np.array([float(e) for e, b in zip(exact, big) if not b])
    assert np.all(np.abs(small) * scale <= 1e-15)
