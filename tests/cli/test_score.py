"""`logloss score` and `logloss demo`, through the CLI's main(argv), with files made in tmp_path.

Reference values are computed here with math.log / math.log1p and math.fsum, independently of
logloss's own code.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import logloss
import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.csv as pcsv  # noqa: E402
import pyarrow.feather as feather  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from logloss._cli import main  # noqa: E402

Y = [1, 0, 1, 1, 0, 0, 1, 0]
P = [0.9, 0.2, 0.6, 0.99, 0.01, 0.45, 0.3, 0.7]
SEG = ["a", "a", "b", "b", "a", "b", "a", "b"]


def exact(y, p, w=None) -> float:
    w = [1.0] * len(y) if w is None else w
    terms = [wi * (-math.log(pi) if yi == 1 else -math.log1p(-pi)) for yi, pi, wi in zip(y, p, w)]
    return math.fsum(terms) / math.fsum(w)


def run_json(capsys, *argv) -> dict:
    code = main(["score", *map(str, argv), "--format", "json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def table(**columns):
    return pa.table(columns)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def csv_text(header=("label", "pred"), rows=None) -> str:
    rows = rows if rows is not None else list(zip(Y, P))
    return ",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


# -- formats ---------------------------------------------------------------------------------


def _writers():
    def parquet(path):
        pq.write_table(table(label=pa.array(Y, pa.int8()), pred=pa.array(P)), path / "x.parquet")
        return path / "x.parquet"

    def csv(path):
        return write_csv(path / "x.csv", csv_text())

    def tsv(path):
        return write_csv(path / "x.tsv", csv_text().replace(",", "\t"))

    def csv_gz(path):
        with gzip.open(path / "x.csv.gz", "wt") as handle:
            handle.write(csv_text())
        return path / "x.csv.gz"

    def csv_zst(path):
        with pa.CompressedOutputStream(str(path / "x.csv.zst"), "zstd") as out:
            out.write(csv_text().encode())
        return path / "x.csv.zst"

    def feather_(path):
        feather.write_feather(table(label=Y, pred=P), path / "x.feather")
        return path / "x.feather"

    def arrow_stream(path):
        with pa.OSFile(str(path / "x.arrow"), "wb") as sink, \
                pa.ipc.new_stream(sink, table(label=Y, pred=P).schema) as writer:
            writer.write_table(table(label=Y, pred=P))
        return path / "x.arrow"

    def jsonl(path):
        lines = "".join(json.dumps({"label": y, "pred": p}) + "\n" for y, p in zip(Y, P))
        return write_csv(path / "x.jsonl", lines)

    def npy_2d(path):
        np.save(path / "x.npy", np.column_stack([Y, P]))
        return path / "x.npy"

    def npy_structured(path):
        array = np.zeros(len(Y), dtype=[("label", "i1"), ("pred", "f4")])
        array["label"], array["pred"] = Y, np.array(P, dtype=np.float32).astype(np.float64)
        np.save(path / "x.npy", array)
        return path / "x.npy"

    def npz(path):
        np.savez(path / "x.npz", label=np.array(Y), pred=np.array(P))
        return path / "x.npz"

    def parquet_dir(path):
        (path / "d").mkdir()
        for i in range(2):
            rows = slice(4 * i, 4 * i + 4)
            pq.write_table(table(label=Y[rows], pred=P[rows]), path / "d" / f"part{i}.parquet")
        return path / "d"

    def parquet_glob(path):
        parquet_dir(path)
        return str(path / "d" / "part*.parquet")

    return [parquet, csv, tsv, csv_gz, csv_zst, feather_, arrow_stream, jsonl, npy_2d,
            npy_structured, npz, parquet_dir, parquet_glob]


@pytest.mark.parametrize("writer", _writers(), ids=lambda f: f.__name__)
def test_every_format_gives_the_exact_log_loss(tmp_path, capsys, writer):
    path = writer(tmp_path)
    result = run_json(capsys, path)
    p = P if writer.__name__ != "npy_structured" else [float(np.float32(v)) for v in P]
    assert result["log_loss"] == pytest.approx(exact(Y, p), rel=1e-14)
    assert result["rows_read"] == result["rows_scored"] == len(Y)
    assert result["rows_rejected"] == 0
    assert result["positives"] == sum(Y)


def test_standard_input_is_read_as_csv(monkeypatch, capsys):
    stdin = io.TextIOWrapper(io.BytesIO(csv_text().encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    result = run_json(capsys, "-")
    assert result["log_loss"] == pytest.approx(exact(Y, P), rel=1e-14)


def test_several_files_are_one_result(tmp_path, capsys):
    a = write_csv(tmp_path / "a.csv", csv_text(rows=list(zip(Y, P))[:3]))
    b = write_csv(tmp_path / "b.csv", csv_text(rows=list(zip(Y, P))[3:]))
    result = run_json(capsys, a, b)
    assert result["log_loss"] == pytest.approx(exact(Y, P), rel=1e-14)
    assert result["files"] == [str(a), str(b)]


def test_large_file_crosses_many_batches_and_blocks(tmp_path, capsys, monkeypatch):
    import logloss._cli.sources as io_module

    monkeypatch.setattr(io_module, "BATCH_ROWS", 1000)
    monkeypatch.setattr(io_module, "CSV_BLOCK_BYTES", 4096)
    rng = np.random.default_rng(3)
    n = 20_000
    p = rng.random(n)
    y = (rng.random(n) < p).astype(np.int8)
    pq.write_table(table(y=y, p=p), tmp_path / "big.parquet", row_group_size=3000)
    pcsv.write_csv(table(y=y, p=p), tmp_path / "big.csv")
    want = exact(y.tolist(), p.tolist())
    for name in ("big.parquet", "big.csv"):
        result = run_json(capsys, tmp_path / name)
        assert result["log_loss"] == pytest.approx(want, rel=1e-13)
        assert result["rows_scored"] == n


def test_parquet_row_groups_read_ahead_stay_in_order_with_huge_groups_between(
        tmp_path, capsys, monkeypatch):
    import logloss._cli.sources as io_module

    monkeypatch.setattr(io_module, "BATCH_ROWS", 1000)
    rng = np.random.default_rng(4)
    sizes = [700, 300, 9000, 500, 500, 2500]  # 9000 > 4 * BATCH_ROWS: read in slices
    p = rng.random(sum(sizes))
    y = (rng.random(len(p)) < p).astype(np.int8)
    bad = sum(sizes[:4]) + 123  # a row in the group after the huge one
    p_bad = p.copy()
    p_bad[bad] = 1.5
    for name, preds in (("good.parquet", p), ("bad.parquet", p_bad)):
        with pq.ParquetWriter(tmp_path / name, pa.schema([("y", pa.int8()), ("p", pa.float64())])) as w:
            start = 0
            for size in sizes:
                w.write_table(table(y=y[start:start + size], p=preds[start:start + size]),
                              row_group_size=size)
                start += size
    assert pq.ParquetFile(tmp_path / "good.parquet").num_row_groups == len(sizes)
    result = run_json(capsys, tmp_path / "good.parquet")
    assert result["rows_scored"] == len(p)
    assert result["log_loss"] == pytest.approx(exact(y.tolist(), p.tolist()), rel=1e-13)
    assert main(["score", str(tmp_path / "bad.parquet"), "-q"]) == 1
    assert f"row {bad + 1}, column 'p': value 1.5 is not a probability" in capsys.readouterr().err


@pytest.mark.parametrize("variant", ["lf", "crlf", "no_final_newline", "lone_cr", "blank_lines",
                                     "quoted", "long_line"])
def test_csv_blocks_parsed_in_parallel_give_every_row_once(tmp_path, capsys, monkeypatch, variant):
    import logloss._cli.sources as io_module

    monkeypatch.setattr(io_module, "CSV_BLOCK_BYTES", 64)
    rng = np.random.default_rng(6)
    p = np.round(rng.uniform(0.01, 0.99, 300), 6)
    y = (rng.random(300) < p).astype(int)
    lines = [f"{a},{b}" for a, b in zip(y, p)]
    header, end = "label,pred", "\n"
    if variant == "crlf":
        end = "\r\n"
    if variant == "lone_cr":
        end = "\r"
    if variant == "quoted":
        header, lines = '"label","pred"', [f'"{a}","{b}"' for a, b in zip(y, p)]
    if variant == "blank_lines":
        lines = [line + ("\n" if i % 7 == 0 else "") for i, line in enumerate(lines)]
    if variant == "long_line":
        header = "label,pred,note"
        lines = [line + "," + ("x" * 200 if i == 5 else "") for i, line in enumerate(lines)]
    text = header + end + end.join(lines) + ("" if variant == "no_final_newline" else end)
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode())
    result = run_json(capsys, path)
    assert result["rows_read"] == 300 and result["rows_scored"] == 300
    assert result["log_loss"] == pytest.approx(exact(y.tolist(), p.tolist()), rel=1e-13)


@pytest.mark.parametrize("first, later, groups", [
    ("x", "1", {"x": 1, "1": 400}),   # text in the first block: "1" is text after the quote too
    ("", "1", {None: 200, "1": 201}),  # empty in the first block (type null): text from then on
    ("2", "1", {2: 200, 1: 201}),
])
def test_csv_by_column_keeps_the_first_blocks_type_after_a_quoted_value(tmp_path, capsys,
                                                                       monkeypatch, first, later,
                                                                       groups):
    # From the first block holding a quote, the file goes to pyarrow's streaming reader, which
    # inferred the --by column's type again from its own first block: "1" was text before the
    # quote and an integer after it, two groups for one value.
    import logloss._cli.sources as io_module

    monkeypatch.setattr(io_module, "CSV_BLOCK_BYTES", 256)
    rows = ["y,p,g,note"]  # "x" only on the first row, the others as later
    rows += [f"{i % 2},0.25,{later if first == 'x' and i else first}," for i in range(200)]
    rows += ['1,0.25,1,"a quoted\nnewline"']
    rows += [f"{i % 2},0.25,{later}," for i in range(200)]
    path = write_csv(tmp_path / "q.csv", "\n".join(rows) + "\n")
    result = run_json(capsys, path, "--label", "y", "--pred", "p", "--by", "g")
    assert {g["group"]["g"]: g["rows_scored"] for g in result["groups"]} == groups
    assert result["rows_scored"] == 401


# -- options ---------------------------------------------------------------------------------


def test_columns_are_detected_and_named_on_stderr(tmp_path, capsys):
    path = write_csv(tmp_path / "x.csv", csv_text(header=("click", "score")))
    assert main(["score", str(path)]) == 0
    captured = capsys.readouterr()
    assert "label='click'" in captured.err and "pred='score'" in captured.err
    assert "log_loss" in captured.out


def test_explicit_columns_weights_and_logits(tmp_path, capsys):
    w = [1, 2, 1, 3, 1, 1, 2, 1]
    z = [math.log(p / (1 - p)) for p in P]
    rows = list(zip(Y, z, w))
    path = write_csv(tmp_path / "x.csv", csv_text(header=("truth", "margin", "w"), rows=rows))
    result = run_json(capsys, path, "--label", "truth", "--pred", "margin", "--weight", "w",
                      "--logits")
    assert result["log_loss"] == pytest.approx(exact(Y, P, w), rel=1e-12)
    assert result["total_weight"] == sum(w)
    assert result["from_logits"] is True


def test_by_gives_per_group_results_that_add_up(tmp_path, capsys):
    rows = list(zip(Y, P, SEG, ["x", "y"] * 4))
    path = write_csv(tmp_path / "x.csv", csv_text(header=("label", "pred", "seg", "dev"), rows=rows))
    result = run_json(capsys, path, "--by", "seg")
    groups = {g["group"]["seg"]: g for g in result["groups"]}
    for segment in ("a", "b"):
        ys = [y for y, s in zip(Y, SEG) if s == segment]
        ps = [p for p, s in zip(P, SEG) if s == segment]
        group = groups[segment]
        assert group["log_loss"] == pytest.approx(exact(ys, ps), rel=1e-14)
        assert group["rows_scored"] == len(ys) and group["positives"] == sum(ys)
        assert group["calibration"] == pytest.approx(sum(ps) / sum(ys), rel=1e-14)
        for field in ("normalized_entropy", "base_rate"):
            assert field in group
    assert result["log_loss"] == pytest.approx(exact(Y, P), rel=1e-14)
    two = run_json(capsys, path, "--by", "seg", "--by", "dev")
    assert len(two["groups"]) == 4
    assert sum(g["rows_scored"] for g in two["groups"]) == len(Y)


def test_positive_maps_string_labels(tmp_path, capsys):
    rows = [("yes" if y else "no", p) for y, p in zip(Y, P)]
    path = write_csv(tmp_path / "x.csv", csv_text(rows=rows))
    result = run_json(capsys, path, "--positive", "yes")
    assert result["log_loss"] == pytest.approx(exact(Y, P), rel=1e-14)
    assert result["label_mapping"] == {"positive": "yes", "negative": "no"}


def test_json_fields_and_calibration(tmp_path, capsys):
    path = write_csv(tmp_path / "x.csv", csv_text())
    result = run_json(capsys, path)
    for field in ("log_loss", "rows_read", "rows_scored", "rows_rejected", "positives",
                  "normalized_entropy", "calibration"):
        assert field in result
    base = sum(Y) / len(Y)
    entropy = -(base * math.log(base) + (1 - base) * math.log1p(-base))
    assert result["normalized_entropy"] == pytest.approx(exact(Y, P) / entropy, rel=1e-14)
    assert result["calibration"] == pytest.approx(math.fsum(P) / sum(Y), rel=1e-14)


def test_csv_and_table_formats_and_output_file(tmp_path, capsys):
    path = write_csv(tmp_path / "x.csv", csv_text(header=("label", "pred", "seg"),
                                                   rows=list(zip(Y, P, SEG))))
    out = tmp_path / "out.csv"
    assert main(["score", str(path), "--by", "seg", "--format", "csv", "-o", str(out), "-q"]) == 0
    assert capsys.readouterr().out == ""
    lines = out.read_text().splitlines()
    assert lines[0].startswith("level,seg,rows_scored,positives")
    assert len(lines) == 4 and lines[-1].startswith("total,,8,4")
    assert main(["score", str(path), "-q"]) == 0
    text = capsys.readouterr().out
    assert "log_loss" in text and f"{exact(Y, P):.6f}" in text
    assert "rows read 8, scored 8, rejected 0" in text


def test_infinite_loss_is_reported_not_hidden(tmp_path, capsys):
    path = write_csv(tmp_path / "x.csv", "label,pred\n1,0.0\n0,0.5\n")
    assert main(["score", str(path), "--format", "json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["log_loss"] is None and result["infinite"] == 1
    assert "infinite loss" in captured.err


def test_no_progress_bar_when_not_a_terminal(tmp_path, capsys):
    path = write_csv(tmp_path / "x.csv", csv_text())
    assert main(["score", str(path)]) == 0
    assert "rows/s" not in capsys.readouterr().err


# -- bad input: a table of (file content, arguments, exit code, message) -----------------------

BAD_INPUT = [
    ("label,pred\n1,0.5\n0,abc\n", [], 1, "x.csv: row 2, column 'pred': value 'abc' is not a number"),
    ("label,pred\n1,0.5\n0,nan\n", [], 1, "row 2, column 'pred': value nan is NaN"),
    ("label,pred\n1,0.5\n0,1.5\n", [], 1, "row 2, column 'pred': value 1.5 is not a probability"),
    ("label,pred\n1,0.5\n0,-0.1\n", [], 1, "row 2, column 'pred': value -0.1 is not a probability"),
    ("label,pred\n1,0.5\n2,0.5\n", [], 1, "row 2, column 'label': value 2 is neither 0 nor 1"),
    ("label,pred\n1,0.5\n,0.5\n", [], 1, "row 2, column 'label': value None is missing"),
    ("label,pred\nyes,0.5\nmaybe,0.5\nno,0.5\n", ["--positive", "yes"], 1,
     "row 3, column 'label': value 'no' is neither the --positive value"),
    ("label,pred\nyes,0.5\n", [], 1, "column 'label': value 'yes' is not a number"),
    ("label,pred,w\n1,0.5,-1\n", ["--weight", "w"], 1, "column 'w': value -1 is not a finite"),
    ("label,pred\n1,nan\n", ["--logits"], 1, "column 'pred': value nan is NaN"),
    ("label,prob\n1,0.5\n", ["--pred", "nope"], 2, "no column 'nope' (for predictions). "
                                                   "The columns are: 'label', 'prob'."),
    ("a,b\n1,0.5\n", [], 2, "cannot tell which column holds the labels; pass --label COL. "
                            "The columns are: 'a', 'b'."),
    ("label,pred\n1,0.5\n", ["--by", "seg"], 2, "no column 'seg'"),
    ("label,pred\n1,0.5\n0,0.5,7\n", [], 1, "line 3: a record of 3 values where the header has 2"),
    ("label,pred\n", [], 1, "no row was left to score"),
    ("label,pred\n1,0.5\n", ["--negative", "no"], 2, "--negative needs --positive"),
]


@pytest.mark.parametrize(("content", "args", "code", "message"), BAD_INPUT,
                         ids=[m[:40] for *_, m in BAD_INPUT])
def test_bad_input(tmp_path, capsys, content, args, code, message):
    path = write_csv(tmp_path / "x.csv", content)
    assert main(["score", str(path), *args, "-q"]) == code
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_bad_value_after_the_first_csv_block_is_still_named_by_row(tmp_path, capsys, monkeypatch):
    import logloss._cli.sources as io_module

    monkeypatch.setattr(io_module, "CSV_BLOCK_BYTES", 64)
    rows = [(1, 0.5)] * 50 + [(0, "oops")] + [(0, 0.25)] * 10
    path = write_csv(tmp_path / "x.csv", csv_text(rows=rows))
    assert main(["score", str(path), "-q"]) == 1
    assert "row 51, column 'pred': value 'oops' is not a number" in capsys.readouterr().err
    result = run_json(capsys, path, "--on-invalid", "skip")
    assert result["rows_read"] == 61 and result["rows_rejected"] == 1
    assert result["log_loss"] == pytest.approx(exact([1] * 50 + [0] * 10, [0.5] * 50 + [0.25] * 10),
                                               rel=1e-14)


def test_csv_types_from_the_first_block_are_passed_back_and_later_floats_still_work(
        tmp_path, capsys, monkeypatch):
    import logloss._cli.sources as io_module

    monkeypatch.setattr(io_module, "CSV_BLOCK_BYTES", 64)
    rows = [(1, 0.5), (0, 0.25)] * 20 + [("1.0", 0.75), ("0.0", 0.125)] + [(1, 0.5)] * 5
    path = write_csv(tmp_path / "x.csv", csv_text(header=("label", "pred", "seg"),
                                                  rows=[(a, b, "s") for a, b in rows]))
    source = io_module.resolve([str(path)])[0]
    assert source.column_names() == ["label", "pred", "seg"]
    assert source._first_block_types(["label", "pred", "seg"]) == {
        "label": pa.int64(), "pred": pa.float64(), "seg": pa.string()}
    y = [float(a) for a, _ in rows]
    p = [float(b) for _, b in rows]
    result = run_json(capsys, path)
    assert result["rows_scored"] == len(rows)
    assert result["log_loss"] == pytest.approx(exact(y, p), rel=1e-14)


def test_skip_counts_every_row_by_reason(tmp_path, capsys):
    content = "label,pred\n1,0.9\n0,abc\n0,nan\n1,1.5\n2,0.5\n,0.5\n0,0.2\n"
    path = write_csv(tmp_path / "x.csv", content)
    code = main(["score", str(path), "--on-invalid", "skip", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0
    result = json.loads(captured.out)
    assert result["rows_read"] == 7
    assert result["rows_scored"] == 2 and result["rows_rejected"] == 5
    assert result["rows_read"] == result["rows_scored"] + result["rows_rejected"]
    assert result["rejected_by_reason"] == {
        "label_missing": 1, "label_not_binary": 1, "pred_nan": 1, "pred_non_numeric": 1,
        "pred_out_of_range": 1}
    assert result["log_loss"] == pytest.approx(exact([1, 0], [0.9, 0.2]), rel=1e-14)
    assert "skipped 5 of 7 rows" in captured.err


def test_corrupt_parquet_is_an_error_not_a_number(tmp_path, capsys):
    n = 50_000
    rng = np.random.default_rng(0)
    pq.write_table(table(label=rng.integers(0, 2, n).astype(np.int8), pred=rng.random(n)),
                   tmp_path / "x.parquet", row_group_size=10_000)
    data = (tmp_path / "x.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    assert main(["score", str(tmp_path / "cut.parquet"), "-q"]) == 1
    assert "cut.parquet" in capsys.readouterr().err
    garbled = bytearray(data)
    garbled[len(data) // 3 : len(data) // 3 + 2000] = b"\xff" * 2000
    (tmp_path / "bad.parquet").write_bytes(bytes(garbled))
    assert main(["score", str(tmp_path / "bad.parquet"), "-q"]) == 1
    captured = capsys.readouterr()
    assert "bad.parquet" in captured.err and captured.out == ""


def test_truncated_gzip_is_an_error(tmp_path, capsys):
    with gzip.open(tmp_path / "x.csv.gz", "wt") as handle:
        handle.write(csv_text(rows=list(zip(Y, P)) * 2000))
    data = (tmp_path / "x.csv.gz").read_bytes()
    (tmp_path / "cut.csv.gz").write_bytes(data[: len(data) // 2])
    assert main(["score", str(tmp_path / "cut.csv.gz"), "-q"]) == 1
    assert "truncated or corrupt" in capsys.readouterr().err
    # Cut in the trailer (CRC and length) only: every row decompresses, yet the file is cut.
    (tmp_path / "trailer.csv.gz").write_bytes(data[:-4])
    assert main(["score", str(tmp_path / "trailer.csv.gz"), "-q"]) == 1
    assert "truncated or corrupt" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["nope.csv"], "no such file"),
    (["x.xlsx"], "unknown file type"),
])
def test_usage_errors(tmp_path, capsys, monkeypatch, argv, message):
    (tmp_path / "x.xlsx").write_text("")
    monkeypatch.chdir(tmp_path)
    assert main(["score", *argv]) == 2
    assert message in capsys.readouterr().err


def test_missing_pyarrow_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert main(["score", str(write_csv(tmp_path / "x.csv", csv_text()))]) == 2
    assert "pip install 'logloss[cli]'" in capsys.readouterr().err


def test_help_documents_exit_codes(capsys):
    assert main(["score", "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes" in out and "invalid data" in out


# -- demo and the installed script -------------------------------------------------------------


def test_demo_scores_the_shipped_sample(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "model=good" in out and "model=bad" in out and "segment=mobile" in out
    demo = Path(__file__).resolve().parents[2] / "src" / "logloss" / "data" / "demo.csv"
    rows = [line.split(",") for line in demo.read_text().splitlines()[1:]]
    good = [(int(r[2]), float(r[3])) for r in rows if r[0] == "good"]
    assert f"{exact(*zip(*good)):.6f}" in out


def test_installed_console_script_scores_a_file(tmp_path):
    script = Path(sys.executable).parent / "logloss"
    found = str(script) if script.exists() else shutil.which("logloss")
    if found is None:
        pytest.skip("the logloss console script is not installed (run the README's install command)")
    path = write_csv(tmp_path / "x.csv", csv_text())
    run = subprocess.run([found, "score", str(path), "--format", "json"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONWARNINGS": "error"})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["log_loss"] == pytest.approx(exact(Y, P), rel=1e-14)
    bad = write_csv(tmp_path / "bad.csv", "label,pred\n1,2\n")
    run = subprocess.run([found, "score", str(bad)], capture_output=True, text=True)
    assert run.returncode == 1 and "row 1, column 'pred'" in run.stderr


def test_table_numbers_are_fixed_width_and_tiny_losses_keep_their_digits():
    from logloss.report.text import format_value as _fmt

    assert _fmt(0.5313022626) == "0.531302"
    assert _fmt(1.2345e-12) == "1.2345e-12"  # a near-perfect model's loss is not shown as 0.000000
    assert _fmt(0.0) == "0.000000"
    assert _fmt(math.inf) == "inf" and _fmt(None) == "-"


def test_score_uses_the_compiled_kernels_and_leaves_the_settings_alone(tmp_path):
    n = 200_000
    rng = np.random.default_rng(3)
    y = (rng.uniform(size=n) < 0.3).astype(np.int8)
    p = rng.uniform(0.01, 0.99, n)
    path = tmp_path / "preds.npz"
    np.savez(path, label=y, pred=p)
    code = (
        "import sys, logloss; from logloss._cli import main; from logloss._numpy import kernels; "
        f"rc = main(['score', {str(path)!r}, '--quiet', '--format', 'json']); "
        "print(rc, 'numba' in sys.modules, kernels.active_path(), logloss.get_config()['engine'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rc, imported, path_name, switch = out.stdout.split()[-4:]
    assert rc == "0" and imported == "False"
    from logloss._numpy import kernels

    assert path_name == str(kernels.active_path())  # None only where no kernel was built
    assert switch == logloss.get_config()["engine"]  # the caller's setting, untouched
    total = math.fsum(-math.log(q) if t else -math.log1p(-q) for t, q in zip(y, p)) / n
    assert f'"log_loss": {total!r}'[:24] in out.stdout


@pytest.mark.parametrize("by", ["seg", "seg,dev", "dict"])
@pytest.mark.parametrize("logits", [False, True])
def test_by_on_the_kernels_equals_by_on_numpy(tmp_path, capsys, monkeypatch, logits, by):
    """Grouped sums in one kernel pass against the sorted per-group path, over several batches,
    with weights, rejected rows (--on-invalid skip), a zero weight and an infinite loss."""
    import logloss
    import logloss._cli.sources as io_module

    monkeypatch.setattr(io_module, "BATCH_ROWS", 1 << 13)
    rng = np.random.default_rng(11)
    n = 5 * (1 << 13) + 123
    y = (rng.uniform(size=n) < 0.4).astype(np.int64)
    p = rng.uniform(-6, 6, n) if logits else rng.uniform(0.001, 0.999, n)
    w = rng.uniform(0, 3, n)
    w[7] = 0.0
    if not logits:
        y[100], p[100] = 1, 0.0  # an infinite loss in group seg[100]
    p[5000] = np.nan  # rejected
    seg = pa.array(rng.choice(["a", "b", "c", "d", "e", None], n))
    if by == "dict":  # a dictionary-encoded column: its own dictionary gives the codes
        seg = seg.dictionary_encode()
    path = tmp_path / "x.parquet"
    pq.write_table(table(label=y, pred=p, w=w, seg=seg, dev=rng.choice(["x", "y"], n)), path)
    argv = [path, "--weight", "w", "--on-invalid", "skip"]
    for column in ("seg", "dev") if by == "seg,dev" else ("seg",):
        argv += ["--by", column]
    argv += ["--logits"] if logits else []
    import logloss._cli.score as score_module
    from logloss._numpy import kernels

    used = []
    original = score_module._add_grouped_sums
    monkeypatch.setattr(score_module, "_add_grouped_sums",
                        lambda *a, **k: used.append(original(*a, **k)) or used[-1])
    fast = run_json(capsys, *argv)
    assert used and all(used) == (kernels.module() is not None)
    with logloss.config_context(engine="numpy"):
        slow = run_json(capsys, *argv)
    assert fast["rows_rejected"] == slow["rows_rejected"] == 1
    assert len(fast["groups"]) == len(slow["groups"]) == (12 if by == "seg,dev" else 6)
    for a, b in zip(fast["groups"], slow["groups"]):
        assert a["group"] == b["group"] and a["rows_scored"] == b["rows_scored"]
        assert a["infinite"] == b["infinite"] and a["positives"] == b["positives"]
        for field in ("log_loss", "total_weight", "calibration", "base_rate"):
            if b[field] is None or math.isinf(b[field]):
                assert a[field] == b[field], field
            else:
                assert a[field] == pytest.approx(b[field], rel=1e-13), field
    assert sum(g["infinite"] for g in fast["groups"]) == (0 if logits else 1)


@pytest.mark.parametrize("bad", [None, ("p", 1.5), ("p", float("nan")), ("y", 3), ("inf", None)])
def test_one_pass_batches_report_what_the_general_path_reports(tmp_path, capsys, monkeypatch, bad):
    # Batches big enough for _fast.hard_label_sums (int8 labels, float32 predictions): a good
    # batch is scored in one pass; a bad one falls back to the checks that name the row.
    import logloss._cli.sources as io_module

    monkeypatch.setattr(io_module, "BATCH_ROWS", 1 << 15)
    rng = np.random.default_rng(5)
    n = 5 * (1 << 15) + 77
    p = rng.random(n).astype(np.float32)
    y = (rng.random(n) < p).astype(np.int8)
    row = 3 * (1 << 15) + 11  # in the fourth batch
    if bad is not None:
        column, value = bad
        if column == "inf":  # valid, but an infinite loss: p = 0 for a positive
            y[row], p[row] = 1, 0.0
        elif column == "p":
            p[row] = value
        else:
            y[row] = value
    pq.write_table(table(y=y, p=p), tmp_path / "x.parquet", row_group_size=1 << 16)
    keep = np.ones(n, dtype=bool)
    if bad is not None and bad[0] != "inf":
        assert main(["score", str(tmp_path / "x.parquet"), "-q"]) == 1
        shown = "nan" if bad[1] != bad[1] else repr(np.float32(bad[1]).item() if bad[0] == "p"
                                                     else bad[1])
        assert f"row {row + 1}, column {bad[0]!r}: value {shown}" in capsys.readouterr().err
        keep[row] = False
    result = run_json(capsys, tmp_path / "x.parquet", "--on-invalid", "skip")
    assert result["rows_read"] == n
    assert result["rows_scored"] == n - (not keep.all())
    assert result["rows_rejected"] == (not keep.all())
    yk, pk = y[keep].tolist(), p[keep].astype(np.float64).tolist()
    assert result["positives"] == sum(yk)
    if bad is not None and bad[0] == "inf":
        assert result["log_loss"] is None and result["infinite"] == 1
        return
    assert result["log_loss"] == pytest.approx(exact(yk, pk), rel=1e-13)
    assert result["calibration"] == pytest.approx(math.fsum(pk) / sum(yk), rel=1e-14)


def _late_groups_table():
    """4000 rows: groups 0-9 throughout, 10 and 11 only in the last quarter, 12 in the last row
    only; a text column with missing values; float64 weights and predictions."""
    rng = np.random.default_rng(1212)
    n = 4000
    g = rng.integers(0, 10, n)
    g[3000:] = rng.integers(0, 12, n - 3000)
    g[-1] = 12
    p = rng.uniform(0.001, 0.999, n)
    p[::97] = rng.uniform(1e-12, 1e-9, p[::97].size)  # a few near-certain predictions
    y = (rng.uniform(size=n) < p).astype(np.int8)
    w = rng.uniform(0.0, 4.0, n)
    s = np.array(["x", "yy", "z\u00e9", ""], dtype=object)[g % 4]
    s[g == 11] = None
    return y, p, w, g, s


@pytest.fixture(scope="module")
def late_groups_reference():
    """Each row's loss by mpmath (256 bits): the groups' sums come from these, not from logloss."""
    from .. import reference as ref

    y, p, w, g, s = _late_groups_table()
    return [ref.bce_probability(float(a), float(b)) for a, b in zip(y, p)]


@pytest.mark.parametrize("batch_rows", [None, 64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("by", [("g",), ("s",), ("g", "s")])
def test_by_matches_mpmath_per_group_across_batches(tmp_path, capsys, monkeypatch, late_groups_reference,
                                                    batch_rows, weighted, by):
    """Every group's numbers against an mpmath sum of its own rows, in one batch and in 63 (groups
    that first appear in later batches included): the group numbers must stay the same across
    batches, and each group's mean is held to 2 ulp of the exact one, as the overall mean is."""
    import mpmath

    import logloss._cli.sources as io_module
    from logloss._accumulator import GroupedStatistics
    from logloss._numpy import kernels

    from .. import reference as ref

    if batch_rows is not None:
        monkeypatch.setattr(io_module, "BATCH_ROWS", batch_rows)
    y, p, w, g, s = _late_groups_table()
    path = tmp_path / "late.parquet"
    pq.write_table(table(label=y, pred=p, w=w, g=g, s=pa.array(s, pa.string())), path)
    used = []
    original = GroupedStatistics.add_batch
    monkeypatch.setattr(GroupedStatistics, "add_batch",
                        lambda *a, **k: used.append(original(*a, **k)) or used[-1])
    argv = [path, *(["--weight", "w"] if weighted else [])]
    for column in by:
        argv += ["--by", column]
    result = run_json(capsys, *argv)
    if kernels.module() is not None:  # every batch in one pass of the grouped kernel
        assert len(used) == (1 if batch_rows is None else -(-len(y) // batch_rows)) and all(used)
    columns = {"g": g.tolist(), "s": s.tolist()}
    keys = list(zip(*(columns[c] for c in by)))
    rows_of: dict = {}
    for row, key in enumerate(keys):
        rows_of.setdefault(key, []).append(row)
    reported = [tuple(group["group"][c] for c in by) for group in result["groups"]]
    assert len(reported) == len(set(reported)) == len(rows_of) and set(reported) == set(rows_of)
    weights = w if weighted else np.ones(len(y))
    with mpmath.workprec(256):
        for group in result["groups"]:
            rows = rows_of[tuple(group["group"][c] for c in by)]
            weight = mpmath.fsum(mpmath.mpf(float(weights[r])) for r in rows)
            loss = mpmath.fsum(mpmath.mpf(float(weights[r])) * late_groups_reference[r] for r in rows)
            labels = mpmath.fsum(mpmath.mpf(float(weights[r])) * int(y[r]) for r in rows)
            predictions = mpmath.fsum(mpmath.mpf(float(weights[r])) * mpmath.mpf(float(p[r])) for r in rows)
            assert group["rows_scored"] == len(rows)
            assert group["positives"] == int(y[rows].sum())
            assert group["total_weight"] == float(weight)  # correctly rounded
            assert ref.ulp_error(group["log_loss"], loss / weight) <= 2, group["group"]
            assert ref.ulp_error(group["base_rate"], labels / weight) <= 1, group["group"]
            if labels:
                assert ref.ulp_error(group["calibration"], predictions / labels) <= 1, group["group"]
    assert sum(group["rows_scored"] for group in result["groups"]) == len(y)


def test_by_merges_the_kernels_groups_with_a_batch_the_general_path_took(tmp_path, capsys):
    """A file whose weights are so small that the grouped kernel leaves its batch to the general
    path (exact scaled sums): its groups merge by key with the groups the kernel summed from the
    other file, one of them seen only there."""
    import mpmath

    from logloss._accumulator import GroupedStatistics

    from .. import reference as ref

    rng = np.random.default_rng(4)
    y1, p1 = (rng.uniform(size=300) < 0.5).astype(np.int8), rng.uniform(0.01, 0.99, 300)
    y2, p2 = (rng.uniform(size=200) < 0.5).astype(np.int8), rng.uniform(0.01, 0.99, 200)
    w1, w2 = rng.uniform(0.5, 2.0, 300), rng.uniform(0.5, 2.0, 200) * 1e-300
    g1, g2 = rng.choice(["a", "b"], 300), rng.choice(["b", "c"], 200)
    pq.write_table(table(label=y1, pred=p1, w=w1, g=g1), tmp_path / "1.parquet")
    pq.write_table(table(label=y2, pred=p2, w=w2, g=g2), tmp_path / "2.parquet")
    assert GroupedStatistics().add_batch(y2, p2, w2, np.zeros(200, np.int32), 1) is False
    result = run_json(capsys, tmp_path / "1.parquet", tmp_path / "2.parquet", "--weight", "w", "--by", "g")
    y, p, w, g = (np.concatenate(pair) for pair in ((y1, y2), (p1, p2), (w1, w2), (g1, g2)))
    assert [group["group"]["g"] for group in result["groups"]] == ["a", "b", "c"]
    with mpmath.workprec(256):
        for group in result["groups"]:
            rows = np.flatnonzero(g == group["group"]["g"])
            weight = mpmath.fsum(mpmath.mpf(float(w[r])) for r in rows)
            loss = mpmath.fsum(mpmath.mpf(float(w[r])) * ref.bce_probability(float(y[r]), float(p[r]))
                               for r in rows)
            assert group["rows_scored"] == rows.size
            assert ref.ulp_error(group["log_loss"], loss / weight) <= 2, group["group"]


@pytest.mark.parametrize("weight_dtype", ["float32", "float64"])
@pytest.mark.parametrize("y, x, w, expected, infinite", [
    # a finite loss (1e308, a logit of -1e308 for a positive) times 2.5 overflows: the grouped
    # kernel counted it infinite and the group's log loss was inf; exactly 2.5e308 / 3.5
    ([1, 0], [-1e308, 0.5], [2.5, 1.0], 2.5 * (1e308 / 3.5), 0),
    ([0, 0], [1e308, 0.5], [2.0, 1.5], None, 0),               # 2e308 + softplus(0.5), over 3.5
    ([1, 0], [-math.inf, 0.5], [2.5, 1.0], math.inf, 1),        # a loss that is infinite stays so
    ([1, 0], [-math.inf, 0.5], [0.0, 1.0], math.log1p(math.exp(0.5)), 0),  # weight 0 drops it
])
def test_by_group_whose_weighted_losses_overflow_is_exact_not_infinite(tmp_path, capsys, weight_dtype,
                                                                        y, x, w, expected, infinite):
    if expected is None:
        expected = 2 * (1e308 / 3.5) + 1.5 * math.log1p(math.exp(0.5)) / 3.5  # the sum overflows
    path = tmp_path / "big.parquet"
    pq.write_table(table(y=np.array(y + [1]), x=np.array(x + [0.0]),
                         w=np.array(w + [1.0], dtype=weight_dtype), g=["a", "a", "b"]), path)
    with np.errstate(over="ignore"):
        out = run_json(capsys, path, "--label", "y", "--pred", "x", "--logits", "--weight", "w",
                       "--by", "g")
    group = out["groups"][0]
    assert group["group"] == {"g": "a"} and group["infinite"] == infinite
    if math.isinf(expected):
        assert group["log_loss"] is None  # inf in strict JSON
    else:
        assert group["log_loss"] == pytest.approx(expected, rel=1e-15)
