"""The ``logloss`` command line: ``main(argv)`` returns an exit code; ``entrypoint`` exits with it."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Sequence

from .._about import config_text

from .runs import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_INVALID_DATA,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_USAGE,
    check_output,
    note,
    read_files,
    write_output,
)


class _Version(argparse.Action):
    """--version: the version and ``logloss.show_config()``'s lines, computed only when asked."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from .records import scan_engine

        print(config_text())
        print(f"CSV quoting check: {scan_engine()}")
        parser.exit()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logloss",
        description="Exact binary cross-entropy (log loss): explained, and computed without clipping.",
    )
    parser.add_argument("--version", action=_Version, help="show the version, engine, CPU path, threads and CSV quoting check, and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    explain = commands.add_parser(
        "explain",
        help="walk through binary cross-entropy with numbers computed by logloss",
        description="Walk through binary cross-entropy: the formula, the bird example, "
        "both terms, the mean, and why frameworks disagree.",
    )
    explain.add_argument("--plot", metavar="FILE", help="also draw the two curves -log p and "
                         "-log(1 - p) with the bird points into FILE (.png, .svg or .pdf)")
    _add_score_parser(commands)
    _add_score_parser(commands, "compare")
    from . import report as cli_report

    cli_report.add_parsers(commands)
    demo = commands.add_parser(
        "demo",
        help="score the sample predictions shipped with logloss (a good and a bad model)",
        description="Run `logloss score` on a small sample file shipped in the package: the same "
        "labels predicted by a good and a bad model, in two segments.",
    )
    cli_report.add_demo_arguments(demo)
    return parser


EXIT_CODES_HELP = """exit codes:
  0  success
  1  invalid data: a bad value (with --on-invalid error), a truncated or corrupt file,
     or no row left to score
  2  usage: a bad option, a missing file or column, an unknown file type, an --output that
     cannot be written or names an input (checked before reading), pyarrow not installed
  3  output: the result could not be written (a full disk, an I/O error); nothing partial
     is left in an --output file
  130  interrupted (Ctrl-C); no result is reported
  141  the output was closed early (e.g. piped into head)
"""


def _add_score_parser(commands, name: str = "score") -> None:
    from . import compare as cli_compare

    compare = name == "compare"
    score = commands.add_parser(
        name,
        help="every framework's log loss of prediction files next to the exact one"
        if compare else
        "exact log loss of prediction files (Parquet, CSV/TSV, Arrow, JSON Lines, NumPy)",
        description=("Every framework's log loss (logloss.conventions) of prediction files next "
                     "to the exact value, and how many rows each one changed; the files are read "
                     "as `logloss score` reads them. " if compare else "")
        + "Exact log loss of prediction files of any size, streamed with bounded memory. "
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
    if compare:
        score.set_defaults(render=cli_compare.render_compare)
    else:
        cli_compare.add_score_options(score)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 on --help
        return int(exit_.code or 0)
    if args.command == "explain":
        from ..report.explain import explain_text

        sys.stdout.write(explain_text())
        if args.plot:
            from .report import run_explain_plot

            return run_explain_plot(args.plot)
        return EXIT_OK
    if args.command in ("score", "compare"):
        return _run_score(args)
    if args.command == "report":
        from .report import run_report

        return run_report(args)
    if args.command == "demo":
        from .report import run_demo

        return run_demo(args, main)
    parser.print_help(sys.stderr)
    return EXIT_USAGE




def _run_score(args) -> int:
    from . import compare as cli_compare
    from .sources import DataError, UsageError, require_pyarrow, resolve

    command = f"logloss {args.command}"
    render = getattr(args, "render", None)

    try:
        from .._command import streaming_settings

        # the process's memory settings (see logloss/_command.py): --by builds after the read
        streaming_settings(builds_after_read=bool(args.by))
        require_pyarrow()
        from ..report.text import csv_pieces, format_table, group_notes, json_pieces
        from .columns import Options
        from .score import report, score

        if args.negative is not None and args.positive is None:
            raise UsageError("--negative needs --positive.")
        if args.files.count("-") > 1:
            raise UsageError("standard input (-) can be read only once.")
        sources = resolve(args.files)
        if args.output:
            check_output(args.output, sources)
        options = Options(label=args.label, pred=args.pred, weight=args.weight, by=args.by,
                          logits=args.logits, positive=args.positive, negative=args.negative,
                          on_invalid=args.on_invalid)
        options.make_accumulator = (cli_compare.compare_factory(args) if render else
                                    cli_compare.accumulator_factory(args, UsageError))
        _, result = read_files(args, lambda sources, progress, rereads: score(
            sources, options, progress, rereads=rereads))
    except UsageError as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (DataError, OverflowError) as error:  # OverflowError: Accumulator's sums leave float64
        print(f"{command}: invalid data: {error}", file=sys.stderr)
        return EXIT_INVALID_DATA
    summary = report(result, options)
    summary.update(cli_compare.describe(args))
    columns = summary["columns"]
    detected = [f"{role}={columns[role]!r}" for role in ("label", "pred")
                if getattr(args, role) is None]
    if detected:
        note(args, f"{command}: detected columns " + ", ".join(detected)
              + " (choose others with --label/--pred)")
    if result.ignored_files:
        note(args, f"{command}: left out {result.ignored_files} file(s) under folders or "
              "names starting with _ or . (writer leftovers and metadata, as Spark and pyarrow "
              "do)")
    if summary["rows_rejected"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in summary["rejected_by_reason"].items())
        note(args, f"{command}: skipped {summary['rows_rejected']} of {summary['rows_read']} "
              f"rows ({reasons})")
    if summary["infinite"]:
        note(args, f"{command}: {summary['infinite']} rows have infinite loss (a prediction "
              "of exactly 0 for a positive or 1 for a negative), so the log loss is inf")
    if result.rows_scored == 0:
        print(f"{command}: invalid data: no row was left to score "
              f"({summary['rows_read']} read, {summary['rows_rejected']} rejected).",
              file=sys.stderr)
        return EXIT_INVALID_DATA
    if not summary["total_weight"] > 0:
        print(f"{command}: invalid data: every weight is zero ({summary['rows_scored']} rows "
              "scored), so the weighted mean is undefined.", file=sys.stderr)
        return EXIT_INVALID_DATA
    for group, message in group_notes(summary.get("groups", [])):
        note(args, f"{command}: group {group}: {message}")
    if render is not None:
        text = render(result, summary, args)
    elif args.format == "json":
        text = itertools.chain(json_pieces(summary), ["\n"])
    elif args.format == "csv":
        text = csv_pieces(summary)
    else:
        text = format_table(summary) + (
            f"rows read {summary['rows_read']}, scored {summary['rows_scored']}, "
            f"rejected {summary['rows_rejected']}\n")
    try:
        write_output(text, args.output)
    except BrokenPipeError:
        raise
    except OSError as error:
        if not args.output:
            # What could not be written stays in stdout's buffer; point stdout at devnull so the
            # interpreter's final flush cannot fail again after this message.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        target = args.output or "standard output"
        # a file gets all or nothing; standard output may have taken a part before the error
        outcome = "nothing was written" if args.output else "the output is incomplete"
        print(f"logloss score: output error: cannot write the result to {target} "
              f"({error.strerror or error}); {outcome}.", file=sys.stderr)
        return EXIT_OUTPUT
    return EXIT_OK










def _end_now(signum, frame) -> None:
    os._exit(EXIT_INTERRUPTED)


def entrypoint() -> None:
    import signal

    from .._command import interrupted_while_starting

    if signal.getsignal(signal.SIGINT) is interrupted_while_starting:  # started: Ctrl-C is
        signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt again
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader left early (`logloss demo | head`): not an error worth a traceback.
        # Point stdout at devnull so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        # A second Ctrl-C from here on (the user is sure) ends the process at once: it escaped
        # this handler with a traceback and exit 1, or killed the process by SIGINT
        signal.signal(signal.SIGINT, _end_now)
        # Ctrl-C is the user's choice, not a bug: a line, not a traceback (the reader thread
        # reads stdin unbuffered, so the interpreter's shutdown finds no lock held)
        print("logloss: interrupted; no result is reported.", file=sys.stderr)
        code = EXIT_INTERRUPTED
    # The process ends here, its output written and closed: gc.freeze() spares the interpreter's
    # last collection a walk over every object left (all of matplotlib's after a report), whose
    # memory goes with the process anyway; no finalizer of ours is left to run.
    import gc

    gc.freeze()
    sys.exit(code)
