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
EXIT_OUTPUT = 3  # the result was computed but could not be written (disk full, I/O error)
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
    _add_score_parser(commands, "compare")
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
  2  usage: a bad option, a missing file or column, an unknown file type, an --output that
     cannot be written or names an input (checked before reading), pyarrow not installed
  3  output: the result could not be written (a full disk, an I/O error); nothing partial
     is left in an --output file
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
        return EXIT_OK
    if args.command in ("score", "compare"):
        return _run_score(args)
    if args.command == "demo":
        return _run_demo()
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _note(args, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)


def _run_score(args) -> int:
    from . import compare as cli_compare
    from .sources import DataError, Reread, UsageError, require_pyarrow, resolve

    command = f"logloss {args.command}"
    render = getattr(args, "render", None)

    try:
        require_pyarrow()
        from ..report.text import format_csv, format_table, jsonable
        from .columns import Options
        from .score import report, score

        if args.negative is not None and args.positive is None:
            raise UsageError("--negative needs --positive.")
        if args.files.count("-") > 1:
            raise UsageError("standard input (-) can be read only once.")
        sources = resolve(args.files)
        if args.output:
            _check_output(args.output, sources)
        options = Options(label=args.label, pred=args.pred, weight=args.weight, by=args.by,
                          logits=args.logits, positive=args.positive, negative=args.negative,
                          on_invalid=args.on_invalid)
        options.make_accumulator = (cli_compare.compare_factory(args) if render else
                                    cli_compare.accumulator_factory(args, UsageError))
        from_stdin = any(s.paths == ["-"] for s in sources)
        rereads: dict[str, list[str]] = {}
        if from_stdin and args.on_invalid == "skip":
            rereads["<stdin>"] = ["text"]  # standard input cannot be read twice
        while True:
            progress = _progress_bar(sources, args.quiet)
            try:
                result = score(sources, options, progress, rereads=rereads)
                break
            except Reread as retry:
                # pyarrow's fast reader could not read a source as it is (a CSV column that
                # changes type after its first block, JSON Lines whose types change, a line
                # longer than the block): read everything again, that source another way.
                done = rereads.setdefault(retry.source, [])
                if retry.source == "<stdin>" or (retry.change in done
                                                 and retry.change != "bigger_block"):
                    cause = retry.__cause__
                    raise DataError(f"{retry.source}: {cause}" if cause else str(retry)) from None
                done.append(retry.change)
                sources = resolve(args.files)
            finally:
                if progress is not None:
                    progress.close()
    except UsageError as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DataError as error:
        print(f"{command}: invalid data: {error}", file=sys.stderr)
        return EXIT_INVALID_DATA
    summary = report(result, options)
    summary.update(cli_compare.describe(args))
    columns = summary["columns"]
    detected = [f"{role}={columns[role]!r}" for role in ("label", "pred")
                if getattr(args, role) is None]
    if detected:
        _note(args, f"{command}: detected columns " + ", ".join(detected)
              + " (choose others with --label/--pred)")
    if result.ignored_files:
        _note(args, f"{command}: left out {result.ignored_files} file(s) under folders or "
              "names starting with _ or . (writer leftovers and metadata, as Spark and pyarrow "
              "do)")
    if summary["rows_rejected"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in summary["rejected_by_reason"].items())
        _note(args, f"{command}: skipped {summary['rows_rejected']} of {summary['rows_read']} "
              f"rows ({reasons})")
    if summary["infinite"]:
        _note(args, f"{command}: {summary['infinite']} rows have infinite loss (a prediction "
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
    for group in summary.get("groups", []):
        if "note" in group:
            _note(args, f"{command}: group {group['group']}: {group['note']}")
    if render is not None:
        text = render(result, summary, args)
    elif args.format == "json":
        import json

        text = json.dumps(jsonable(summary), indent=2, allow_nan=False) + "\n"
    elif args.format == "csv":
        text = format_csv(summary)
    else:
        text = format_table(summary) + (
            f"rows read {summary['rows_read']}, scored {summary['rows_scored']}, "
            f"rejected {summary['rows_rejected']}\n")
    try:
        _write(text, args.output)
    except BrokenPipeError:
        raise
    except OSError as error:
        if not args.output:
            # What could not be written stays in stdout's buffer; point stdout at devnull so the
            # interpreter's final flush cannot fail again after this message.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        target = args.output or "standard output"
        print(f"logloss score: output error: cannot write the result to {target} "
              f"({error.strerror or error}); nothing was written.", file=sys.stderr)
        return EXIT_OUTPUT
    return EXIT_OK


def _check_output(output: str, sources) -> None:
    """Refuse, before reading, an --output that cannot be written or is one of the inputs."""
    from .sources import UsageError

    if output == "-":
        raise UsageError("--output -: leave --output out to write to standard output.")
    if os.path.isdir(output):
        raise UsageError(f"--output {output}: is a directory; name a file.")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise UsageError(f"--output {output}: the folder {folder} does not exist.")
    if os.path.exists(output):
        for source in sources:
            for path in source.paths:
                if path != "-" and os.path.exists(path) and os.path.samefile(path, output):
                    raise UsageError(f"--output {output}: is the input file {path}; writing the "
                                     "result there would overwrite the data.")
    # Try it (permissions alone say nothing for root or on /proc): open an existing target
    # without truncating it, or make and remove a file in the folder the result will go to.
    try:
        if os.path.exists(output) and not os.path.isfile(output):
            open(output, "a").close()
        else:
            import tempfile

            tempfile.TemporaryFile(dir=folder).close()
            if os.path.exists(output) and not os.access(output, os.W_OK):
                raise PermissionError(13, "Permission denied")
    except OSError as error:
        raise UsageError(f"--output {output}: cannot be written ({error.strerror or error}).") \
            from None


def _write(text: str, output: str | None) -> None:
    """Write the result whole or not at all: a regular file is written beside the target and
    renamed over it, so a full disk leaves no partial report; anything else (a terminal, a
    pipe, /dev/full) is written and flushed here, so its error is caught here."""
    if not output:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    if os.path.exists(output) and not os.path.isfile(output):
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    import tempfile

    folder = os.path.dirname(os.path.abspath(output))
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, delete=False,
                                         prefix=".logloss-", suffix=".tmp")
    try:
        with handle:
            handle.write(text)
        mode = os.stat(output).st_mode & 0o7777 if os.path.exists(output) else 0o666 & ~_umask()
        os.chmod(handle.name, mode)
        os.replace(handle.name, output)
    except BaseException:
        os.unlink(handle.name)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
