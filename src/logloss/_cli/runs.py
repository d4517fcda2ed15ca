"""What every command that reads prediction files shares: exit codes, notes on standard error,
the --output checks and the all-or-nothing write, the progress bar, and reading the files again
another way when pyarrow's fast reader cannot read one as it is."""

from __future__ import annotations

import os
import re
import select
import sys

EXIT_OK = 0
EXIT_INVALID_DATA = 1
EXIT_USAGE = 2
EXIT_OUTPUT = 3  # the result was computed but could not be written (disk full, I/O error)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command killed by it


def note(args, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)

def check_output(output: str, sources) -> None:
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

# C0 controls but tab and line feed, DEL, and C1 controls: what can move a terminal's cursor,
# recolour it or retitle it.
_TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def for_terminal(text: str) -> str:
    """``text`` with each control character written as ``\\xNN``: a CSV value read from a file
    is shown, not obeyed, when the result goes to a terminal (files and pipes get it as is)."""
    return _TERMINAL_CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def write_output(text, output: str | None) -> None:
    """Write the result whole or not at all: a regular file is written beside the target and
    renamed over it, so a full disk leaves no partial report; anything else (a terminal, a
    pipe, /dev/full) is written and flushed here, so its error is caught here. ``text`` is a
    string or an iterable of pieces (a report of millions of groups is never held whole)."""
    pieces = (text,) if isinstance(text, str) else text
    if not output:
        _write_standard_output(pieces)
        return
    if os.path.exists(output) and not os.path.isfile(output):
        with open(output, "w", encoding="utf-8") as handle:
            handle.writelines(pieces)
        return
    import tempfile

    folder = os.path.dirname(os.path.abspath(output))
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, delete=False,
                                         prefix=".logloss-", suffix=".tmp")
    try:
        with handle:
            handle.writelines(pieces)
        mode = os.stat(output).st_mode & 0o7777 if os.path.exists(output) else 0o666 & ~_umask()
        os.chmod(handle.name, mode)
        os.replace(handle.name, output)
    except BaseException:
        os.unlink(handle.name)
        raise


def _write_standard_output(pieces) -> None:
    """Every piece to standard output, or an OSError. On POSIX the bytes go to its descriptor
    here, until all are written: the text layer lost what a short write left out when
    unbuffered (python -u, PYTHONUNBUFFERED=1: a result cut short by a full disk ended with
    exit 0), and gave up on a pipe its parent had made non-blocking once the pipe was full
    (the report stopped at 64 KB with a traceback). Elsewhere, or when standard output has
    no descriptor (a test's capture), through the text layer."""
    terminal = sys.stdout.isatty()
    try:
        fd = sys.stdout.fileno() if os.name == "posix" else None  # no newline translation
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None:
        for piece in pieces:
            sys.stdout.write(for_terminal(piece) if terminal else piece)
        sys.stdout.flush()
        return
    sys.stdout.flush()  # what was printed before goes first
    encoding, errors = sys.stdout.encoding, sys.stdout.errors or "strict"
    for piece in pieces:
        data = memoryview((for_terminal(piece) if terminal else piece).encode(encoding, errors))
        while data:
            try:
                data = data[os.write(fd, data):]
            except BlockingIOError:  # a non-blocking pipe that is full: wait for room
                select.select([], [fd], [])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

def progress_bar(sources, quiet: bool, desc: str = "scoring"):
    """A tqdm bar on a terminal: rows with ETA when the row count is known, else bytes; ``desc``
    names the phase."""
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
                   desc=desc, dynamic_ncols=True)
    else:
        bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024,
                   file=sys.stderr, desc=desc, dynamic_ncols=True)
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


def read_files(args, scan, desc: str = "scoring"):
    """``scan(sources, progress, rereads)`` over the files named by ``args.files``, again with a
    source read another way each time it raises ``Reread`` (a CSV column that changes type after
    its first block, JSON Lines whose types change or a line longer than the block)."""
    from .sources import DataError, Reread, resolve

    sources = resolve(args.files)
    rereads: dict[str, list[str]] = {}
    if any(s.paths == ["-"] for s in sources) and args.on_invalid == "skip":
        rereads["<stdin>"] = ["text"]  # standard input cannot be read twice
    while True:
        progress = progress_bar(sources, args.quiet, desc)
        try:
            return sources, scan(sources, progress, rereads)
        except Reread as retry:
            done = rereads.setdefault(retry.source, [])
            again = {"text": 2}.get(retry.change, 1)  # text: the roles, then --by
            if retry.source == "<stdin>" or done.count(retry.change) >= again:
                cause = retry.__cause__
                hint = ""
                if retry.source == "<stdin>" and retry.change == "text":
                    hint = (" Standard input is read once, with the column types of its first "
                            "rows, so it cannot be read again with this column as text: "
                            "save it to a file and score the file.")
                said = f"{retry.source}: {cause}".rstrip(".") + "." if cause else str(retry)
                raise DataError(said + hint) from None
            done.append(retry.change)
            sources = resolve(args.files)
        finally:
            if progress is not None:
                progress.close()
