"""logloss.torch: the signatures and numbers of torch.nn.BCELoss / BCEWithLogitsLoss, and a training loop."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import logloss  # noqa: E402
import logloss.torch as lt  # noqa: E402

from logloss.report.explain import ARTICLE_X, ARTICLE_Y  # noqa: E402

rng = np.random.default_rng(11)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_same_numbers_as_torch_where_torch_is_exact(reduction, dtype):
    p = torch.tensor(rng.uniform(0.01, 0.99, (8, 3)), dtype=dtype)
    z = torch.tensor(rng.normal(0, 3, (8, 3)), dtype=dtype)
    y = torch.tensor(rng.uniform(0, 1, (8, 3)) < 0.5, dtype=dtype)
    weight = torch.tensor(rng.uniform(0, 2, (8, 3)), dtype=dtype)
    pos_weight = torch.tensor([1.0, 2.0, 0.5], dtype=dtype)
    rtol = 1e-12 if dtype == torch.float64 else 2e-6
    pairs = [
        (lt.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction), p),
        (lt.BCELoss(weight, reduction=reduction), torch.nn.BCELoss(weight, reduction=reduction), p),
        (lt.BCEWithLogitsLoss(reduction=reduction), torch.nn.BCEWithLogitsLoss(reduction=reduction), z),
        (
            lt.BCEWithLogitsLoss(weight, reduction=reduction, pos_weight=pos_weight),
            torch.nn.BCEWithLogitsLoss(weight, reduction=reduction, pos_weight=pos_weight),
            z,
        ),
    ]
    for ours, theirs, x in pairs:
        result = ours(x, y)
        assert result.dtype == dtype
        torch.testing.assert_close(result, theirs(x, y), rtol=rtol, atol=0)


def test_exact_where_bceloss_clamps():
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    p = torch.tensor([1e-40, 1 - 1e-16], dtype=torch.float64)
    ours = lt.BCELoss(reduction="none")(p, y)
    theirs = torch.nn.BCELoss(reduction="none")(p, y)
    torch.testing.assert_close(ours, torch.tensor([-np.log(1e-40), -np.log1p(-(1 - 1e-16))], dtype=torch.float64))
    assert float(theirs[0]) == pytest.approx(-np.log(1e-40))  # fine above e^-100 ...
    deep = torch.tensor([1e-300], dtype=torch.float64)
    assert float(torch.nn.BCELoss()(deep, y[:1])) == 100.0  # ... clamped at 100 below it
    assert float(lt.BCELoss()(deep, y[:1])) == pytest.approx(690.7755278982137, rel=1e-15)
    with pytest.warns(logloss.InfiniteLossWarning):
        assert torch.isinf(lt.BCELoss()(torch.tensor([0.0]), torch.tensor([1.0])))
    assert torch.isfinite(lt.BCELoss(clip=1e-7)(torch.tensor([0.0]), torch.tensor([1.0])))


def test_modules_carry_their_buffers_and_state_dict():
    criterion = lt.BCEWithLogitsLoss(weight=torch.ones(3), pos_weight=torch.tensor([1.0, 2.0, 3.0]))
    assert set(criterion.state_dict()) == {"weight", "pos_weight"}
    assert criterion.to(torch.float64).pos_weight.dtype == torch.float64


def test_training_loop_decreases_the_loss_and_matches_torch():
    torch.manual_seed(0)
    x = torch.tensor(ARTICLE_X, dtype=torch.float32)
    y = torch.tensor(ARTICLE_Y, dtype=torch.float32)[:, None]
    model = torch.nn.Linear(2, 1)
    criterion = lt.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2
    with torch.no_grad():
        final = model(x)
        assert float(criterion(final, y)) == pytest.approx(float(torch.nn.BCEWithLogitsLoss()(final, y)), rel=1e-6)
        assert float(criterion(final, y)) == pytest.approx(float(logloss.bce(ARTICLE_Y, final.double().numpy()[:, 0], from_logits=True)), rel=1e-6)


@pytest.mark.parametrize("case", [
    ("sparse predictions", lambda y, x: (y, x.to_sparse()), "`y_pred`", "sparse_coo"),
    ("sparse labels", lambda y, x: (y.to_sparse(), x), "`y_true`", "sparse_coo"),
    ("csr predictions", lambda y, x: (y.reshape(1, 3), x.reshape(1, 3).to_sparse_csr()), "`y_pred`", "sparse_csr"),
], ids=lambda case: case[0])
@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_sparse_tensors_are_refused_by_name(case, validate):
    # They used to fail in aminmax or is_contiguous, with messages about neither argument.
    _, make, name, layout = case
    y, x = make(torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.3, 0.1, 0.8]))
    with pytest.raises(TypeError, match=f"{name}.*{layout}"):
        logloss.bce(y, x, validate=validate)
