"""The ``logloss`` command line: ``main(argv)`` returns an exit code; ``entrypoint`` exits with it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .._about import config_text

EXIT_OK = 0
EXIT_INVALID_DATA = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command killed by it


class _Version(argparse.Action):
    """--version: the version and ``logloss.show_config()``'s lines, computed only when asked."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(config_text())
        parser.exit()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logloss",
        description="Exact binary cross-entropy (log loss): explained, and computed without clipping.",
    )
    parser.add_argument("--version", action=_Version, help="show the version, engine, CPU path and threads, and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "explain",
        help="walk through binary cross-entropy with numbers computed by logloss",
        description="Walk through binary cross-entropy: the formula, the bird example, "
        "both terms, the mean, and why frameworks disagree.",
    )
    _add_score_parser(commands)
    commands.add_parser(
        "demo",
        help="score the sample predictions shipped with logloss (a good and a bad model)",
        description="Run `logloss score` on a small sample file shipped in the package: the same "
        "labels predicted by a good and a bad model, in two segments.",
    )
    return parser


EXIT_CODES_HELP = """exit codes:
  0  success
  1  invalid data: a bad value (with --on-invalid error), a truncated or corrupt file,
     or no row left to score
  2  usage: a bad option, a missing file or column, an unknown file type, pyarrow not installed
  141  the output was closed early (e.g. piped into head)
"""


def _add_score_parser(commands) -> None:
    score = commands.add_parser(
        "score",
        help="exact log loss of prediction files (Parquet, CSV/TSV, Arrow, JSON Lines, NumPy)",
        description="Exact log loss of prediction files of any size, streamed with bounded memory. "
        "FILE is Parquet (.parquet, a directory or a glob of them), CSV/TSV (.csv, .tsv, "
        "optionally .gz or .zst), Arrow IPC/Feather (.arrow, .feather), JSON Lines (.jsonl), "
        "NumPy (.npy, .npz), or - for CSV on standard input.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("files", nargs="+", metavar="FILE")
    score.add_argument("--label", metavar="COL", help="label column (default: detect label, y, "
                       "target, click, ...)")
    score.add_argument("--pred", metavar="COL", help="prediction column (default: detect pred, "
                       "prob, p, score, ...)")
    score.add_argument("--logits", action="store_true", help="predictions are logits, not "
                       "probabilities")
    score.add_argument("--weight", metavar="COL", help="sample-weight column")
    score.add_argument("--by", metavar="COL", action="append", default=[],
                       help="also report per value of COL (repeat for combinations)")
    score.add_argument("--positive", metavar="VALUE", help="the label value that means 1 (for "
                       "labels such as yes/no); the one other value means 0")
    score.add_argument("--negative", metavar="VALUE", help="with --positive: the label value that "
                       "means 0 (default: the other value seen)")
    score.add_argument("--on-invalid", choices=["error", "skip"], default="error",
                       help="a bad row stops the run with an error naming it (default), or is "
                       "skipped and counted by reason")
    score.add_argument("--format", choices=["table", "json", "csv"], default="table")
    score.add_argument("--output", "-o", metavar="FILE", help="write the result here, not stdout")
    score.add_argument("--quiet", "-q", action="store_true",
                       help="no progress bar and no notes on standard error")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 on --help
        return int(exit_.code or 0)
    if args.command == "explain":
        from ..report.explain import explain_text

        sys.stdout.write(explain_text())
        return EXIT_OK
    if args.command == "score":
        return _run_score(args)
    if args.command == "demo":
        return _run_demo()
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _note(args, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)


def _run_score(args) -> int:
    from .sources import DataError, UsageError, require_pyarrow, resolve

    try:
        require_pyarrow()
        from ..report.text import format_csv, format_table, jsonable
        from .columns import Options
        from .score import NeedsTextRead, report, score

        if args.negative is not None and args.positive is None:
            raise UsageError("--negative needs --positive.")
        if args.files.count("-") > 1:
            raise UsageError("standard input (-) can be read only once.")
        sources = resolve(args.files)
        options = Options(label=args.label, pred=args.pred, weight=args.weight, by=args.by,
                          logits=args.logits, positive=args.positive, negative=args.negative,
                          on_invalid=args.on_invalid)
        from_stdin = any(s.paths == ["-"] for s in sources)
        text_read = from_stdin and args.on_invalid == "skip"
        while True:
            progress = _progress_bar(sources, args.quiet)
            try:
                result = score(sources, options, progress, text_read=text_read)
                break
            except NeedsTextRead as retry:
                if text_read or from_stdin:
                    raise DataError(f"{retry}: {retry.__cause__}") from None
                # A CSV column changed type after its first block: read the columns as text,
                # which finds and names the offending row.
                sources = resolve(args.files)
                text_read = True
            finally:
                if progress is not None:
                    progress.close()
    except UsageError as error:
        print(f"logloss score: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DataError as error:
        print(f"logloss score: invalid data: {error}", file=sys.stderr)
        return EXIT_INVALID_DATA
    summary = report(result, options)
    columns = summary["columns"]
    detected = [f"{role}={columns[role]!r}" for role in ("label", "pred")
                if getattr(args, role) is None]
    if detected:
        _note(args, "logloss score: detected columns " + ", ".join(detected)
              + " (choose others with --label/--pred)")
    if summary["rows_rejected"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in summary["rejected_by_reason"].items())
        _note(args, f"logloss score: skipped {summary['rows_rejected']} of {summary['rows_read']} "
              f"rows ({reasons})")
    if summary["infinite"]:
        _note(args, f"logloss score: {summary['infinite']} rows have infinite loss (a prediction "
              "of exactly 0 for a positive or 1 for a negative), so the log loss is inf")
    if result.rows_scored == 0:
        print("logloss score: invalid data: no row was left to score "
              f"({summary['rows_read']} read, {summary['rows_rejected']} rejected).",
              file=sys.stderr)
        return EXIT_INVALID_DATA
    if args.format == "json":
        import json

        text = json.dumps(jsonable(summary), indent=2, allow_nan=False) + "\n"
    elif args.format == "csv":
        text = format_csv(summary)
    else:
        text = format_table(summary) + (
            f"rows read {summary['rows_read']}, scored {summary['rows_scored']}, "
            f"rejected {summary['rows_rejected']}\n")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _progress_bar(sources, quiet: bool):
    """A tqdm bar on a terminal: rows with ETA when the row count is known, else bytes."""
    if quiet or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    counts = [s.num_rows() for s in sources]
    sizes = [s.size for s in sources]
    rows_known = all(c is not None for c in counts)
    size_known = all(s is not None for s in sizes)
    total_bytes = sum(sizes) if size_known else None
    if rows_known:
        bar = tqdm(total=sum(counts), unit=" rows", unit_scale=True, file=sys.stderr,
                   desc="scoring", dynamic_ncols=True)
    else:
        bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024,
                   file=sys.stderr, desc="scoring", dynamic_ncols=True)
    state = {"rows": 0, "bytes": 0, "base": 0, "source_pos": 0}

    class Progress:
        def __call__(self, rows: int, position: int) -> None:
            state["rows"] += rows
            if position < state["source_pos"]:  # a new file started
                state["base"] += state["source_pos"]
            state["source_pos"] = position
            done = state["base"] + position
            if rows_known:
                bar.update(rows)
                if total_bytes:
                    bar.set_postfix_str(f"{done / 1e6:.0f}/{total_bytes / 1e6:.0f} MB",
                                        refresh=False)
            else:
                bar.update(max(done - state["bytes"], 0))
                bar.set_postfix_str(f"{state['rows']:,} rows", refresh=False)
            state["bytes"] = done

        def close(self) -> None:
            bar.close()

    return Progress()


def _run_demo() -> int:
    from importlib.resources import as_file, files

    resource = files("logloss").joinpath("data", "demo.csv")
    with as_file(resource) as path:
        print("logloss demo: the same 400 labels predicted by a good and a bad model, in two "
              "segments.\nThe command it runs:\n\n"
              "  logloss score demo.csv --by model\n", flush=True)
        code = main(["score", str(path), "--by", "model", "--quiet"])
        if code != EXIT_OK:
            return code
        print("\nand per segment:  logloss score demo.csv --by model --by segment\n", flush=True)
        code = main(["score", str(path), "--by", "model", "--by", "segment", "--quiet"])
        if code == EXIT_OK:
            print("\nLower is better; normalized_entropy < 1 beats always predicting the base rate;"
                  "\ncalibration = sum(p) / sum(y) is 1 when predictions are right on average."
                  "\nScore your own file:  logloss score predictions.parquet --by segment")
        return code


def entrypoint() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader left early (`logloss demo | head`): not an error worth a traceback.
        # Point stdout at devnull so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_BROKEN_PIPE
    sys.exit(code)
