/* The quoting of CSV text, checked a block at a time: where the last whole record ends, and
 * whether a quoted value is closed badly. The same rules as records.py's scan_records (the
 * Python version, used without a C compiler); see there for the rules and the reason. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define SHORT_STRETCH 64

static int is_end(char c, char delimiter) { return c == delimiter || c == '\n' || c == '\r'; }

/* One past the last \n or \r in [from, to), or -1; a \r at `undecided` (the text's last byte,
 * which a \n may follow in the next read) is none. */
static Py_ssize_t last_record_end(const char *text, Py_ssize_t from, Py_ssize_t to,
                                  Py_ssize_t undecided) {
    for (Py_ssize_t i = to - 1; i >= from; i--)
        if (text[i] == '\n' || (text[i] == '\r' && i != undecided)) return i + 1;
    return -1;
}

/* The line ends in text[0, end) as an editor counts them: \n, \r\n, a lone \r (the cut
 * never splits a \r\n). Counted in stretches of 255 bytes into byte-wide counters, which the
 * compiler vectorizes; the \r\n pairs only where there is a \r. */
static Py_ssize_t count_lines(const char *text, Py_ssize_t end) {
    Py_ssize_t lf = 0, cr = 0;
    for (Py_ssize_t from = 0; from < end; from += 255) {
        Py_ssize_t to = end - from > 255 ? from + 255 : end;
        unsigned char lf_here = 0, cr_here = 0;
        for (Py_ssize_t i = from; i < to; i++) {
            lf_here += text[i] == '\n';
            cr_here += text[i] == '\r';
        }
        lf += lf_here;
        cr += cr_here;
    }
    if (cr == 0) return lf;
    Py_ssize_t pairs = 0;
    for (Py_ssize_t from = 0; from + 1 < end; from += 255) {
        Py_ssize_t to = end - 1 - from > 255 ? from + 255 : end - 1;
        unsigned char here = 0;
        for (Py_ssize_t i = from; i < to; i++) here += (text[i] == '\r') & (text[i + 1] == '\n');
        pairs += here;
    }
    return lf + cr - pairs;
}

static PyObject *scan_records(PyObject *self, PyObject *args) {
    Py_buffer view;
    int delimiter_code, final;
    if (!PyArg_ParseTuple(args, "y*ip", &view, &delimiter_code, &final))
        return NULL;
    const char *text = view.buf;
    const char delimiter = (char)delimiter_code;
    const Py_ssize_t n = view.len;
    Py_ssize_t cut = 0, bad_at = -1, open_at = -1, lines = 0;
    const Py_ssize_t undecided = final ? -1 : n - 1;  /* a last \r may be half of a \r\n */

    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t at = 0;
    for (;;) {
        /* outside quotes from `at`: the next quote that opens a value (one at a field's start),
         * noting line ends on the way; a byte at a time over a short stretch (quoted files have
         * a quote every few bytes), memchr beyond it */
        Py_ssize_t open = -1, q = -1;
        while (open < 0) {
            Py_ssize_t stop = n - at > SHORT_STRETCH ? at + SHORT_STRETCH : n;
            for (Py_ssize_t i = at; i < stop; i++) {
                char c = text[i];
                if (c == '"') { q = i; break; }
                if (c == '\n' || (c == '\r' && i != undecided)) cut = i + 1;
            }
            if (q < 0 && stop < n) {
                const char *quote = memchr(text + stop, '"', (size_t)(n - stop));
                Py_ssize_t end = last_record_end(text, stop, quote ? quote - text : n, undecided);
                if (end > 0) cut = end;
                if (quote) q = quote - text;
            }
            if (q < 0) break;
            if (q == 0 || is_end(text[q - 1], delimiter)) open = q;
            else { at = q + 1; q = -1; }  /* a quote inside an unquoted value is text */
        }
        if (open < 0) {
            if (final) cut = n;
            break;
        }
        /* inside the quoted value opened at `open`: a doubled quote is a quote */
        Py_ssize_t from = open + 1, closed = -1;
        for (;;) {
            const char *quote = memchr(text + from, '"', (size_t)(n - from));
            if (!quote) break;
            q = quote - text;
            if (q + 1 == n) {
                if (final) closed = n;
                break;  /* otherwise the next block says whether it is doubled */
            }
            if (text[q + 1] == '"') { from = q + 2; continue; }
            if (!is_end(text[q + 1], delimiter)) bad_at = q + 1;
            closed = q + 1;
            break;
        }
        if (bad_at >= 0) break;
        if (closed < 0) { open_at = open; break; }
        if (closed == n) { cut = n; break; }
        at = closed;
    }
    lines = count_lines(text, cut);
    Py_END_ALLOW_THREADS

    PyBuffer_Release(&view);
    return Py_BuildValue("nnnn", cut, bad_at, open_at, lines);
}

static PyMethodDef methods[] = {
    {"scan_records", scan_records, METH_VARARGS,
     "scan_records(text, delimiter, final) -> (cut, bad_at, open_at, lines): "
     "see records.scan_records."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_quotes", .m_size = -1,
                                    .m_methods = methods};

PyMODINIT_FUNC PyInit__quotes(void) { return PyModule_Create(&module); }
