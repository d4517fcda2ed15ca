"""`logloss score --clip/--convention` and `logloss compare`, on files, against the library."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pyarrow")

import logloss
from logloss import conventions as C
from logloss._cli import main


@pytest.fixture
def predictions(tmp_path):
    rng = np.random.default_rng(0)
    n = 3_000
    y = (rng.uniform(size=n) < 0.3).astype(np.int64)
    p = np.where(y == 1, rng.beta(5, 2, n), rng.beta(2, 5, n))
    p[:30] = np.where(y[:30] == 1, 1e-50, 1 - 1e-13)  # confident mistakes
    w = rng.uniform(0.5, 2.0, n)
    seg = np.where(rng.uniform(size=n) < 0.5, "a", "b")
    path = tmp_path / "preds.csv"
    with open(path, "w") as handle:
        handle.write("label,pred,w,seg\n")
        rows = zip(y, p.tolist(), w.tolist(), seg)
        handle.writelines("{},{!r},{!r},{}\n".format(*row) for row in rows)
    return str(path), y, p, w, seg


def run_json(capsys, *argv):
    assert main([*argv, "--format", "json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


def test_score_clip_is_binary_cross_entropy_with_clip(capsys, predictions):
    path, y, p, _, _ = predictions
    result = run_json(capsys, "score", path, "--clip", "1e-7")
    assert result["log_loss"] == pytest.approx(float(logloss.bce(y, p, clip=1e-7)), rel=1e-13)
    assert result["clip"] == 1e-7 and result["infinite"] == 0


@pytest.mark.parametrize("name", ["keras", "torch", "xgboost", "sklearn", "torchrec"])
def test_score_convention_is_the_conventions_function(capsys, predictions, name):
    path, y, p, w, _ = predictions
    result = run_json(capsys, "score", path, "--convention", name, "--weight", "w")
    expected = float(C.loss(name, y, p, sample_weight=w))
    assert result["log_loss"] == pytest.approx(expected, rel=1e-6 if name == "xgboost" else 1e-13)
    assert result["convention"] == name


@pytest.mark.parametrize("argv, message", [
    (["--clip", "0.7"], "--clip bounds predictions to [clip, 1 - clip] and must be in (0, 0.5)"),
    (["--clip", "1e-7", "--convention", "keras"], "pass one of them"),
    (["--convention", "tensorflow"], ("unknown --convention 'tensorflow'. The conventions are: "
                                      "sklearn, keras")),
    (["--convention", "torch_logits"], "takes logits: pass --logits"),
    (["--convention", "xgboost", "--logits"], "has no logits form"),
])
def test_bad_options_are_usage_errors(capsys, predictions, argv, message):
    path = predictions[0]
    assert main(["score", path, "--quiet", *argv]) == 2
    assert message in capsys.readouterr().err


def test_compare_on_a_file_is_logloss_compare(capsys, predictions):
    path, y, p, w, _ = predictions
    result = run_json(capsys, "compare", path, "--weight", "w")
    expected = logloss.compare(y, p, sample_weight=w).rows
    assert [r["convention"] for r in result["conventions"]] == [r["convention"] for r in expected]
    for ours, theirs in zip(result["conventions"], expected):
        assert ours["rows_changed"] == theirs["rows_changed"]
        if theirs["value"] is not None:
            assert ours["value"] == pytest.approx(theirs["value"], rel=1e-12)
        else:
            assert ours["value"] is None and ours["note"] == theirs["note"]


def test_compare_by_group_and_as_text(capsys, predictions):
    path, y, p, _, seg = predictions
    result = run_json(capsys, "compare", path, "--by", "seg")
    assert [g["group"] for g in result["groups"]] == [{"seg": "a"}, {"seg": "b"}]
    keras_a = next(r for r in result["groups"][0]["conventions"] if r["convention"] == "keras")
    assert keras_a["value"] == pytest.approx(float(C.keras(y[seg == "a"], p[seg == "a"])),
                                             rel=1e-12)
    assert main(["compare", path, "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "keras" in text and "rows read 3000, scored 3000, rejected 0" in text
    assert main(["compare", path, "--quiet", "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 1 + len(C.names())
