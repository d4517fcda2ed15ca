"""``logloss explain``: the seed articles' story, every number computed by the library."""

from __future__ import annotations

import numpy as np

from ._binary import binary_cross_entropy
from ._information import binary_entropy, binary_kl_divergence

# The seed article's data: two features per sample, two birds then two non-birds.
SEED_X = np.array([[2, 4], [1, 3], [8, 9], [5, 7]])
SEED_Y = np.array([1, 1, 0, 0])


def seed_logits(x: np.ndarray = SEED_X) -> np.ndarray:
    """A fixed logistic model for the seed data: z = 4 - 0.4 * (x1 + x2)."""
    return 4 - 0.4 * x.sum(axis=1)


def _one(y: float, p: float) -> float:
    return float(binary_cross_entropy([y], [p]))


def explain_text() -> str:
    z = seed_logits()
    p_model = 1 / (1 + np.exp(-z))
    per_sample = binary_cross_entropy(SEED_Y, z, from_logits=True, reduction="none")
    good = np.array([0.9, 0.8, 0.2, 0.1])
    bad = np.array([0.3, 0.4, 0.7, 0.6])
    y_soft, p_soft = 0.7, 0.4
    worst_keras = float(binary_cross_entropy([1], [0.0], clip=1e-7))
    worst_xgb = float(binary_cross_entropy([1], [0.0], clip=1e-15))
    worst_sklearn = float(binary_cross_entropy([1], [0.0], clip=float(np.finfo(np.float64).eps)))
    lines = [
        "Binary cross-entropy (log loss), step by step",
        "=" * 45,
        "",
        "1. The formula, for one sample with label y (1 = bird, 0 = not) and predicted",
        "   probability p that it is a bird:",
        "       L(p, y) = -[ y*log(p) + (1 - y)*log(1 - p) ]",
        "",
        "2. A bird photo (y = 1): only the first term counts.",
        f"       predicted 99% bird: log(0.99) = {np.log(0.99):+.5f}, loss = {_one(1, 0.99):.5f}",
        f"       predicted  5% bird: log(0.05) = {np.log(0.05):+.5f}, loss = {_one(1, 0.05):.5f}",
        "",
        "3. Why the minus sign: log p is negative for p < 1, and *more* negative the worse",
        "   the prediction. Negating turns it into a loss: near 0 when right, large when wrong.",
        "",
        "4. A photo without a bird (y = 0): only the second term counts, with 1 - p,",
        "   the predicted probability of 'no bird'.",
        f"       predicted  5% bird: loss = -log(0.95) = {_one(0, 0.05):.5f}",
        f"       predicted 99% bird: loss = -log(0.01) = {_one(0, 0.99):.5f}",
        "",
        "5. The mean over samples. The introductory articles' data,",
        "   X = [[2,4],[1,3],[8,9],[5,7]], y = [1,1,0,0],",
        "   scored by the logistic model z = 4 - 0.4*(x1 + x2), p = sigmoid(z):",
    ]
    for row, label, prob, loss in zip(SEED_X, SEED_Y, p_model, per_sample):
        lines.append(f"       x = {row.tolist()!s:<7} y = {label}  p = {prob:.4f}  loss = {loss:.5f}")
    lines += [
        f"       mean = {binary_cross_entropy(SEED_Y, z, from_logits=True):.5f}",
        "",
        "6. A good classifier against a bad one on the same labels y = [1,1,0,0]:",
        f"       good p = {good.tolist()}: mean loss = {binary_cross_entropy(SEED_Y, good):.5f}",
        f"       bad  p = {bad.tolist()}: mean loss = {binary_cross_entropy(SEED_Y, bad):.5f}",
        "   Lower is better; a constant 0.5 scores log 2 = "
        f"{binary_cross_entropy(SEED_Y, np.full(4, 0.5)):.5f}.",
        "",
        "7. Confident mistakes. A bird predicted at exactly 0% has loss -log(0) = +inf, and",
        "   each framework quietly replaces that with its own number:",
        f"       Keras (clips p at 1e-7):            {worst_keras:.2f}",
        f"       scikit-learn (clips at float eps):  {worst_sklearn:.2f}",
        f"       XGBoost/LightGBM (clip near 1e-15): {worst_xgb:.2f}",
        "       PyTorch (clamps log at -100):       100.00",
        "   logloss returns the exact value (+inf, with a warning) unless you pass clip=.",
        "",
        "8. The information-theory view: cross-entropy = label entropy + KL divergence.",
        f"   For a soft label y = {y_soft} and prediction p = {p_soft}:",
        f"       BCE = {_one(y_soft, p_soft):.5f} = H(y) {float(binary_entropy(y_soft)):.5f}"
        f" + KL {float(binary_kl_divergence([y_soft], [p_soft])):.5f}",
        "   H(y) is the least loss any prediction can reach; KL is what a better one removes.",
    ]
    return "\n".join(lines) + "\n"
