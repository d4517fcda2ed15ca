"""``logloss report`` and ``logloss demo``: where the loss of prediction files comes from.

The files are read as ``logloss score`` reads them (same sources, column detection, per-batch
checks and messages, exit codes, CSV retry, progress bar), and each checked batch feeds a
:class:`logloss.DiagnosticsState`: memory stays bounded whatever the file size, and the report
is computed from the state's histograms, with the bounds they carry.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

REPORT_HELP = """output:
  --format html (default) writes one self-contained HTML file (no network, inline pictures);
  --format json writes the same figures as JSON.

exit codes:
  0  success
  1  invalid data: a bad value (with --on-invalid error), a truncated or corrupt file,
     or no row left to score
  2  usage: a bad option, a missing file or column, an unknown file type, pyarrow, matplotlib
     or jinja2 not installed
  141  the output was closed early (e.g. piped into head)
"""


def add_parsers(commands) -> None:
    from .._diagnostics import DEFAULTS

    report = commands.add_parser(
        "report",
        help="where the loss comes from: an HTML (or JSON) report of prediction files",
        description="Diagnose prediction files of any size, streamed with bounded memory: the "
        "decomposition into miscalibration, discrimination and uncertainty, calibration, the "
        "worst rows, the concentration of the loss, segments (--by) and a row-by-row comparison "
        "of several models (several --pred). Files and columns as for `logloss score`.",
        epilog=REPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("files", nargs="+", metavar="FILE")
    report.add_argument("--label", metavar="COL", help="label column (default: detect label, y, "
                        "target, click, ...)")
    report.add_argument("--pred", metavar="COL", action="append", default=[],
                        help="prediction column (default: detect pred, prob, p, score, ...); "
                        "repeat for several models on the same labels")
    report.add_argument("--logits", action="store_true", help="predictions are logits")
    report.add_argument("--weight", metavar="COL", help="sample-weight column")
    report.add_argument("--by", metavar="COL", action="append", default=[],
                        help="segments: per value of COL (repeat for combinations)")
    report.add_argument("--id", metavar="COL", help="the column that names rows in the list of "
                        "worst rows (default: file and row number)")
    report.add_argument("--positive", metavar="VALUE", help="the label value that means 1")
    report.add_argument("--negative", metavar="VALUE", help="with --positive: the value that "
                        "means 0")
    report.add_argument("--on-invalid", choices=["error", "skip"], default="error",
                        help="a bad row stops the run with an error naming it (default), or is "
                        "skipped and counted by reason")
    report.add_argument("--format", choices=["html", "json"], default="html")
    report.add_argument("--output", "-o", metavar="FILE", help="write the report here, not stdout")
    report.add_argument("--title", default=None, help="the report's title")
    report.add_argument("--worst", type=int, default=10, metavar="K", help="list the K worst "
                        "rows (default 10)")
    report.add_argument("--bins", type=int, default=10, metavar="N",
                        help="equal-mass calibration bins (default 10)")
    report.add_argument("--resolution", type=int, default=DEFAULTS["resolution"], metavar="N",
                        help="prediction histogram bins (default 65536): what the streamed "
                        "decomposition and ECE are computed from; their bounds shrink with it")
    report.add_argument("--max-segments", type=int, default=20, metavar="N",
                        help="show the N segments with the largest share of the loss; fold the "
                        "rest into 'other' (default 20)")
    report.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar and no notes on standard error")


def add_demo_arguments(demo) -> None:
    demo.add_argument("--copy", metavar="FILE", help="first copy the demo file to FILE, and run "
                      "the commands on that copy")
    demo.add_argument("--report", metavar="FILE.html", help="also write the demo's report (both "
                      "models compared row by row) to this HTML file")


# -- logloss report --------------------------------------------------------------------------


def run_report(args) -> int:
    from .columns import Options
    from .runs import EXIT_INVALID_DATA, EXIT_OK, EXIT_OUTPUT, EXIT_USAGE, check_output, note, read_files, write_output
    from .sources import DataError, UsageError, require_pyarrow, resolve

    prog = "logloss report"
    try:
        from .._command import streaming_settings

        # the process's memory settings (see logloss/_command.py): the state is built as the
        # files stream, with or without --by
        streaming_settings(builds_after_read=False)
        require_pyarrow()
        _require_report_libraries(args.format)
        prefetch = _prefetch_pictures() if args.format == "html" else None
        from .._diagnostics import DiagnosticsState, check_setting

        if args.negative is not None and args.positive is None:
            raise UsageError("--negative needs --positive.")
        if args.files.count("-") > 1:
            raise UsageError("standard input (-) can be read only once.")
        if len(set(args.pred)) != len(args.pred):
            raise UsageError(f"--pred names a column twice: {args.pred}.")

        def new_state():
            return DiagnosticsState(from_logits=args.logits, k=args.worst, bins=args.bins,
                                    resolution=args.resolution)

        try:
            new_state()
            check_setting("max_segments", args.max_segments)
        except (TypeError, ValueError) as error:
            message = str(error)
            for name, flag in (("k", "--worst"), ("bins", "--bins"),
                               ("resolution", "--resolution"), ("max_segments", "--max-segments")):
                message = message.replace(f"argument `{name}`", flag).replace(
                    f"Received: {name}=", f"Received: {flag} ")
            raise UsageError(message) from None
        if args.output:
            check_output(args.output, resolve(args.files))
        options = Options(label=args.label, pred=args.pred[0] if args.pred else None,
                          weight=args.weight, by=list(dict.fromkeys(args.by)),
                          logits=args.logits,  # a repeated --by column adds nothing
                          positive=args.positive, negative=args.negative,
                          on_invalid=args.on_invalid)
        state = None

        def scan(sources, progress, rereads):
            nonlocal state
            state = new_state()
            return _diagnose_sources(sources, options, args, state, progress, rereads)

        _, run = read_files(args, scan, desc="diagnosing")
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DataError as error:
        print(f"{prog}: invalid data: {error}", file=sys.stderr)
        return EXIT_INVALID_DATA
    columns = run["columns"]
    detected = [f"{role}={columns[role]!r}" for role in ("label", "pred")
                if (role == "label" and args.label is None) or (role == "pred" and not args.pred)]
    if detected:
        note(args, f"{prog}: detected columns " + ", ".join(detected)
             + " (choose others with --label/--pred)")
    rejected = run["rows_read"] - run["rows_scored"]
    if rejected:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(run["rejected"].items()))
        note(args, f"{prog}: skipped {rejected} of {run['rows_read']} rows ({reasons})")
    if run["rows_scored"] == 0:
        print(f"{prog}: invalid data: no row was left to score ({run['rows_read']} read, "
              f"{rejected} rejected).", file=sys.stderr)
        return EXIT_INVALID_DATA
    from ..report.diagnosis import Diagnosis

    try:
        diagnosis = Diagnosis.from_state(state, max_segments=args.max_segments,
                                         title=args.title or "Where the loss comes from",
                                         sources=run["files"])
    except (ValueError, OverflowError) as error:  # every remaining row has weight 0, or sums overflow
        print(f"{prog}: invalid data: {error}", file=sys.stderr)
        return EXIT_INVALID_DATA
    infinite = sum(m["infinite"] for m in diagnosis.models.values())
    if infinite:
        note(args, f"{prog}: {infinite} rows have infinite loss (a prediction of exactly 0 for "
             "a positive or 1 for a negative), so the log loss is inf")
    if args.format == "json":
        import json

        payload = {"rows_read": run["rows_read"], "rows_scored": run["rows_scored"],
                   "rows_rejected": rejected, "rejected_by_reason": dict(sorted(
                       run["rejected"].items())),
                   "files": run["files"], "columns": columns, **diagnosis.to_dict()}
        text = json.dumps(payload, indent=2, allow_nan=False) + "\n"
    else:
        if prefetch is not None:
            prefetch.join()
            if prefetch.error is not None:
                print(f"{prog}: error: the HTML report cannot import its libraries "
                      f"({prefetch.error}); pip install 'logloss[report]' (or pass --format "
                      "json).", file=sys.stderr)
                return EXIT_USAGE
        try:
            text = diagnosis.to_html()
        except ValueError as error:  # over the size limit
            print(f"{prog}: error: {error}", file=sys.stderr)
            return EXIT_USAGE
    try:
        write_output(text, args.output)
    except BrokenPipeError:
        raise
    except OSError as error:
        target = args.output or "standard output"
        # a file gets all or nothing; standard output may have taken a part before the error
        outcome = "nothing was written" if args.output else "the output is incomplete"
        print(f"{prog}: output error: cannot write the report to {target} "
              f"({error.strerror or error}); {outcome}.", file=sys.stderr)
        return EXIT_OUTPUT
    if args.output:
        note(args, f"{prog}: wrote {args.output}")
    return EXIT_OK


def _prefetch_pictures():
    """Import matplotlib and jinja2 (0.4-0.6 s) and the report's drawing modules, and compile
    its template, on a thread of their own while the files stream: the import overlaps the
    reading instead of following it.
    Returns the thread; its ``error`` is the import's, if any (a broken install)."""
    import threading

    def load() -> None:
        try:
            import jinja2  # noqa: F401
            import matplotlib.backends.backend_svg  # noqa: F401
            import matplotlib.figure  # noqa: F401

            from ..report import html, plots  # noqa: F401

            html.template()
        except Exception as error:  # noqa: BLE001 - reported by the caller after the join
            thread.error = error

    thread = threading.Thread(target=load, name="logloss-prefetch", daemon=True)
    thread.error = None
    thread.start()
    return thread


def _require_report_libraries(output_format: str) -> None:
    from .sources import UsageError

    if output_format != "html":
        return
    import importlib.util

    for module in ("matplotlib", "jinja2"):  # found, not imported: _prefetch_pictures imports
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise UsageError(f"the HTML report needs {module}: pip install 'logloss[report]' "
                             "(or pass --format json).")


def _diagnose_sources(sources, options, args, state, progress, rereads) -> dict:
    """Read every source as `score` does and feed each checked batch to the state."""
    from .batches import LabelMapper
    from .columns import pick_columns
    from .score import (
        apply_rereads,
        check_csv_by_kinds,
        inferred_by_sources,
        stream,
        text_columns,
    )
    from .sources import UsageError

    apply_rereads(sources, rereads)
    plan = []
    for source in sources:
        names = source.column_names()
        columns = pick_columns(names, options, source.name)
        preds = list(args.pred) or [columns["pred"]]
        for column in preds + ([args.id] if args.id else []):
            if column not in names:
                listing = ", ".join(repr(n) for n in names)
                role = "--id" if column == args.id else "--pred"
                raise UsageError(f"{source.name}: no column {column!r} (for {role}). "
                                 f"The columns are: {listing}.")
        columns["preds"] = preds
        columns["id"] = args.id
        # the reader reads label, pred, weight and the `by` list: the extra columns ride there
        extra = [c for c in preds[1:] + list(options.by) + ([args.id] if args.id else [])]
        columns["by"] = list(dict.fromkeys(extra))
        plan.append(columns)
    labels = (LabelMapper(options.positive, options.negative)
              if options.positive is not None else None)
    run = {"columns": {"label": plan[0]["label"], "pred": plan[0]["preds"][0],
                       "preds": plan[0]["preds"], "weight": plan[0]["weight"],
                       "by": list(options.by), "id": args.id},
           "files": [s.name for s in sources], "rows_read": 0, "rows_scored": 0,
           "rejected": {}, "numbering": {}}
    several_files = len(sources) > 1 or any(len(s.paths) > 1 for s in sources)
    # A --by value is one segment whatever each CSV or JSON Lines file infers (as in score):
    # read again as text where two files' kinds differ; only the --by columns, not the extra
    # --pred and --id columns that ride in the reader's "by" list.
    segment_plan = [{**columns, "by": list(options.by)} for columns in plan]
    text = text_columns(sources, segment_plan, rereads, ("label", "preds", "weight"))
    inferred = inferred_by_sources(sources, options.by)
    kinds: dict = {}
    for columns, batch, path, offset, n in stream(sources, plan, text, progress):
        run["rows_read"] += n
        if path in inferred:
            check_csv_by_kinds([batch[c] for c in options.by], inferred[path], kinds)
        _diagnose_batch(batch, columns, path, offset, n, options, labels, state, run, several_files)
    del run["numbering"]
    return run


# Integer --by values are numbered by value (the value itself when 0 <= values < the span, else
# value - lowest) while the values seen span at most this many: no hash table, and the same keys
# (a list kept across batches) while the span holds.
BY_VALUE_SPAN = 1 << 17


def _codes_by_value(column, keep, numbering: dict, *, trust: bool = False):
    """(codes, keys) of an integer column without missing values, numbered by value over the
    span of the values seen so far (kept in ``numbering``); None for any other column, or when
    the span would exceed BY_VALUE_SPAN (pyarrow's hash table numbers those). With ``trust``,
    when the values seen so far are their own codes, the batch's values are taken as codes of
    the same keys without a pass for their bounds: the kernel's check of every code against
    the keys refuses a batch whose values leave them, and the caller asks again untrusted."""
    import pyarrow as pa

    from .batches import numpy_view

    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks != 1:
            return None
        column = column.chunk(0)
    if not isinstance(column, pa.Array) or not pa.types.is_integer(column.type) or column.null_count:
        return None
    values = numpy_view(column)
    if not len(values):
        return None
    if trust and keep is None and numbering.get("low") == 0:
        return values, numbering["keys"]
    low, high = int(values.min()), int(values.max())
    if numbering:
        low, high = min(low, numbering["low"]), max(high, numbering["high"])
    if 0 <= low and high < BY_VALUE_SPAN:
        low = 0  # the values are their own codes: no pass to subtract
    if high - low >= BY_VALUE_SPAN:
        return None
    if numbering.get("low") != low or numbering.get("high") != high:
        numbering.update(low=low, high=high, keys=[(v,) for v in range(low, high + 1)])
    if low == 0:
        codes = values
    else:
        if values.dtype.itemsize < 4:
            values = values.astype(np.int32)
        # value - low is below the span: exact in the column's own (wrapping) integers
        codes = (values - values.dtype.type(low)).astype(np.int32, copy=False)
    return (codes if keep is None else codes[keep]), numbering["keys"]


def _diagnose_batch(batch, columns, path, offset, n, options, labels, state, run,
                    several_files) -> None:
    from .batches import (
        check_labels,
        check_predictions,
        check_weights,
        numeric_values,
        reject_bad_rows,
    )
    from .sources import DataError

    reasons: dict = {}
    raw = {"label": batch[columns["label"]]}
    names = {"label": columns["label"]}
    try:
        y = labels(raw["label"], reasons) if labels else numeric_values(raw["label"], reasons, "label")
        predictions, found = {}, {}
        for index, column in enumerate(columns["preds"]):
            role = "pred" if index == 0 else f"pred{index}"
            raw[role] = batch[column]
            names[role] = column
            found[role] = {}
            predictions[column] = numeric_values(raw[role], found[role], "pred")
        w = None
        if columns["weight"]:
            raw["weight"] = batch[columns["weight"]]
            names["weight"] = columns["weight"]
            w = numeric_values(raw["weight"], reasons, "weight")
    except DataError as error:
        raise DataError(f"{path}: {error}") from None
    if not reasons and not any(found.values()) and labels is None:
        # The common batch: the compiled kernel checks every value and adds the batch in one
        # pass on all threads; a value it refuses sends the batch to the checks below, which
        # name or skip the bad rows.
        for trust in (True, False):  # a batch whose values leave the keys: counted again
            by, ids = _segments_and_ids(batch, columns, options, None, n, path, offset,
                                        several_files, run["numbering"], trust=trust)
            if state._add_compiled(y, _models(predictions, columns), w, by, ids) is not None:
                run["rows_scored"] += n
                return
            if len(options.by) != 1:
                break
    if labels is None:
        check_labels(y, reasons)
    for index, column in enumerate(columns["preds"]):
        role = "pred" if index == 0 else f"pred{index}"
        check_predictions(predictions[column], found[role], options.logits)
        for (_, reason), mask in found[role].items():
            reasons[(role, reason)] = mask
    if w is not None:
        check_weights(w, reasons)
    keep = None
    if reasons:
        keep = reject_bad_rows(reasons, n, raw, names, path, offset, options.on_invalid,
                               run["rejected"])
        y = y[keep]
        predictions = {k: v[keep] for k, v in predictions.items()}
        w = w[keep] if w is not None else None
    run["rows_scored"] += len(y)
    if not len(y):
        return
    by, ids = _segments_and_ids(batch, columns, options, keep, n, path, offset, several_files,
                                run["numbering"])
    state.update(y, _models(predictions, columns), sample_weight=w, by=by, ids=ids)


def _models(predictions: dict, columns: dict) -> dict:
    return predictions if len(predictions) > 1 else {columns["preds"][0]:
                                                     next(iter(predictions.values()))}


def _segments_and_ids(batch, columns, options, keep, n, path, offset, several_files, numbering,
                      *, trust=False):
    """The batch's segment codes (--by) and the function that names its worst rows: the --id
    value, or the row number in the file (file:row with several files)."""
    from .._diagnostics import SegmentCodes
    from .groups import group_codes, one_column_codes

    by = None
    if len(options.by) == 1:
        column = batch[options.by[0]]
        found = _codes_by_value(column, keep, numbering, trust=trust)
        if found is None:  # pyarrow's hash table; its keys may repeat or be empty: merged by key
            found = one_column_codes(column, keep, options.by[0])
        by = SegmentCodes(options.by, *found, plain=True)
    elif options.by:
        codes, keys = group_codes([batch[c] for c in options.by], keep, options.by)
        by = SegmentCodes(options.by, codes, keys, plain=True)
    rows = None if keep is None else np.flatnonzero(keep)

    def position(candidates):
        return candidates if rows is None else rows[candidates]

    if columns["id"]:
        id_values = batch[columns["id"]]

        def ids(candidates):
            picked = position(candidates)
            if hasattr(id_values, "take"):
                return id_values.take(picked).to_pylist()
            return np.asarray(id_values)[picked].tolist()
    elif several_files:
        def ids(candidates):
            return [f"{path}:{offset + r + 1}" for r in position(candidates).tolist()]
    else:
        def ids(candidates):
            return (offset + position(candidates) + 1).tolist()  # the row number in the file
    return by, ids


# -- logloss explain --plot -----------------------------------------------------------------


def run_explain_plot(path: str) -> int:
    from .runs import EXIT_OK, EXIT_USAGE

    try:
        from ..report.plots import plot_explain

        ax = plot_explain()
        ax.figure.savefig(path, dpi=120)
    except ImportError as error:
        print(f"logloss explain: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError) as error:  # an unwritable path, an unknown extension
        print(f"logloss explain: error: cannot write {path}: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Drew the two curves into {path}.")
    return EXIT_OK


# -- logloss demo ----------------------------------------------------------------------------


def run_demo(args, main) -> int:
    """Score the shipped demo file with commands a reader can type: its installed path, or the
    copy written where --copy asks."""
    import shlex
    import shutil
    from importlib.resources import as_file, files

    from .runs import EXIT_OK, EXIT_USAGE

    resource = files("logloss").joinpath("data", "demo.csv")
    with as_file(resource) as installed:
        path = str(installed)
        if args.copy:
            try:
                shutil.copyfile(path, args.copy)
            except OSError as error:
                print(f"logloss demo: error: cannot write {args.copy}: {error.strerror}",
                      file=sys.stderr)
                return EXIT_USAGE
            path = args.copy
        quoted = shlex.quote(path)
        print("logloss demo: the same 400 labels predicted by a good and a bad model, in two "
              f"segments.\nThe demo file: {path}\nThe command it runs:\n\n"
              f"  logloss score {quoted} --by model\n", flush=True)
        code = main(["score", path, "--by", "model", "--quiet"])
        if code != EXIT_OK:
            return code
        print(f"\nand per segment:  logloss score {quoted} --by model --by segment\n",
              flush=True)
        code = main(["score", path, "--by", "model", "--by", "segment", "--quiet"])
        if code != EXIT_OK:
            return code
        print("\nLower is better; normalized_entropy < 1 beats always predicting the base rate;"
              "\ncalibration = sum(p) / sum(y) is 1 when predictions are right on average."
              "\nScore your own file:  logloss score predictions.parquet --by segment"
              "\nWhere its loss comes from:  logloss report predictions.parquet -o report.html",
              flush=True)
        if args.report:
            return _demo_report(path, args.report)
        print("The demo's report (good against bad, row by row):  logloss demo --report "
              "demo.html")
        return EXIT_OK


def _demo_report(path: str, output: str) -> int:
    """The demo file holds the two models one below the other: side by side, they are compared
    row by row (the introductory articles' good against bad classifier)."""
    import csv

    from .runs import EXIT_OK, EXIT_USAGE

    try:
        _require_report_libraries("html")
    except Exception as error:  # noqa: BLE001 - UsageError, printed as usage
        print(f"logloss demo: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    from ..report.diagnosis import diagnose

    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    good = [r for r in rows if r["model"] == "good"]
    bad = [r for r in rows if r["model"] == "bad"]
    y = np.array([int(r["label"]) for r in good])
    diagnosis = diagnose(y, {"good": np.array([float(r["pred"]) for r in good]),
                             "bad": np.array([float(r["pred"]) for r in bad])},
                         by={"segment": np.array([r["segment"] for r in good])},
                         ids=np.arange(1, len(good) + 1))
    diagnosis.title = "logloss demo: a good and a bad model on the same 400 labels"
    diagnosis.sources = [path]
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(diagnosis.to_html())
    except OSError as error:
        print(f"logloss demo: error: cannot write {output}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    print(f"\nWrote the demo's report to {output}: open it in a browser.")
    return EXIT_OK
