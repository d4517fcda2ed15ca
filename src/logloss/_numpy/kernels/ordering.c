/* Orderings for the exact in-memory diagnostics (included by kernels.c; everything here is static
 * and prefixed order_): a sort of 64-bit keys, a stable argsort of float64 values, the rows
 * grouped by distinct prediction in sorted order, the rows worst first, and pooling of adjacent
 * violators (the isotonic fit). The sorts are least-significant-digit radix sorts, linear in the
 * row count: NumPy's sort is a comparison sort on CPUs where its SIMD sort is not dispatched. A
 * digit every key shares is skipped. Every function releases the GIL; the sorts give what
 * np.sort and np.argsort(kind="stable") give, the rest what _numpy/ordering.py's NumPy code
 * gives within rounding, which the tests check. */

#if defined(__linux__)
#include <sys/mman.h>
#endif

#define ORDER_BITS 8
#define ORDER_SIZE (1 << ORDER_BITS)
#define ORDER_DIGITS 8 /* 64 / ORDER_BITS: 256 write streams a pass (11-bit digits, 2048, were slower) */

/* malloc, with huge pages asked for a large block as NumPy asks for its arrays: the sorts write
 * every page of several row-sized buffers, and a fault per 4 KB page costs more than the pass. */
static void *order_alloc(size_t bytes) {
    void *p = malloc(bytes + 1);
#if defined(MADV_HUGEPAGE)
    if (p && bytes >= ((size_t)1 << 22)) {
        uintptr_t start = ((uintptr_t)p + 4095) & ~(uintptr_t)4095, end = (uintptr_t)p + bytes;
        if (end > start) madvise((void *)start, end - start, MADV_HUGEPAGE);
    }
#endif
    return p;
}

/* counts[d][v]: how many keys have digit d equal to v; returns -1 when out of memory. */
static Py_ssize_t *order_counts(const uint64_t *keys, Py_ssize_t n) {
    Py_ssize_t *counts = calloc((size_t)ORDER_DIGITS * ORDER_SIZE, sizeof(Py_ssize_t));
    if (!counts) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t k = keys[i];
        for (int d = 0; d < ORDER_DIGITS; d++)
            counts[d * ORDER_SIZE + ((k >> (d * ORDER_BITS)) & (ORDER_SIZE - 1))]++;
    }
    return counts;
}

/* counts of one digit -> where each value's first key goes; 0 when one value holds all n keys
 * (the pass would move nothing). */
static int order_offsets(Py_ssize_t *count, Py_ssize_t n) {
    Py_ssize_t sum = 0;
    for (int v = 0; v < ORDER_SIZE; v++) {
        if (count[v] == n) return 0;
        Py_ssize_t c = count[v];
        count[v] = sum;
        sum += c;
    }
    return 1;
}

/* Sorts keys (unsigned order) through scratch, both n long; the result ends in keys. */
static int order_sort_keys(uint64_t *keys, uint64_t *scratch, Py_ssize_t n) {
    Py_ssize_t *counts = order_counts(keys, n);
    if (!counts) return -1;
    uint64_t *from = keys, *to = scratch;
    for (int d = 0; d < ORDER_DIGITS; d++) {
        Py_ssize_t *at = counts + d * ORDER_SIZE;
        if (!order_offsets(at, n)) continue;
        int shift = d * ORDER_BITS;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t k = from[i];
            to[at[(k >> shift) & (ORDER_SIZE - 1)]++] = k;
        }
        uint64_t *t = from; from = to; to = t;
    }
    if (from != keys) memcpy(keys, from, (size_t)n * sizeof(uint64_t));
    free(counts);
    return 0;
}

/* float64 -> unsigned key in the same order: -0.0 as 0.0 (equal for np.argsort), negatives
 * with every bit flipped, the others with the sign bit set. No NaN reaches here. */
static inline uint64_t order_key(double v) {
    v += 0.0;
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return (u >> 63) ? ~u : u | ((uint64_t)1 << 63);
}

/* order[i] = the index of the i-th smallest value (largest: descending), ties in index order (a
 * stable sort). */
static int order_argsort(const double *values, int64_t *order, Py_ssize_t n, int descending) {
    uint64_t *keys = order_alloc((size_t)n * sizeof(uint64_t));
    uint64_t *keys2 = order_alloc((size_t)n * sizeof(uint64_t));
    int64_t *order2 = order_alloc((size_t)n * sizeof(int64_t));
    Py_ssize_t *counts = NULL;
    int status = -1;
    if (!keys || !keys2 || !order2) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        keys[i] = descending ? ~order_key(values[i]) : order_key(values[i]);
        order[i] = i;
    }
    counts = order_counts(keys, n);
    if (!counts) goto done;
    uint64_t *from = keys, *to = keys2;
    int64_t *ifrom = order, *ito = order2;
    for (int d = 0; d < ORDER_DIGITS; d++) {
        Py_ssize_t *at = counts + d * ORDER_SIZE;
        if (!order_offsets(at, n)) continue;
        int shift = d * ORDER_BITS;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t k = from[i];
            Py_ssize_t j = at[(k >> shift) & (ORDER_SIZE - 1)]++;
            to[j] = k;
            ito[j] = ifrom[i];
        }
        uint64_t *t = from; from = to; to = t;
        int64_t *it = ifrom; ifrom = ito; ito = it;
    }
    if (ifrom != order) memcpy(order, ifrom, (size_t)n * sizeof(int64_t));
    status = 0;
done:
    free(keys); free(keys2); free(order2); free(counts);
    return status;
}

/* -log p (positive) or -log(1 - p) (negative) within 1 ulp, as hard_losses computes it; libm
 * where the kernel's log does not apply (a subnormal or zero q). */
static inline double order_loss(int positive, double p) {
    double a = 1.0 - p, c = -p - (a - 1.0);  /* 1 - p = a + c exactly */
    if (positive) { a = p; c = 0.0; }
    if (a >= TINY) return -log_plus(a, c);
    return positive ? -log(p) : -log1p(-p);
}

/* The groups of sorted keys (p bits << 1 | label, unweighted probabilities) that share p: per
 * group the count of negatives and of positives, count * p, the summed loss and the count.
 * Returns the group count; the first entries of keys become the groups' p (float64 bits: a
 * group's entry is written after every key up to it was read). */
static Py_ssize_t order_probability_groups(uint64_t *keys, Py_ssize_t n, double *neg, double *pos,
                                           double *wp, double *wloss, double *weight) {
    Py_ssize_t g = -1;
    uint64_t last = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t k = keys[i];
        if (g < 0 || (k >> 1) != last) {
            g++;
            last = k >> 1;
            keys[g] = last;
            neg[g] = pos[g] = 0.0;
        }
        if (k & 1) pos[g] += 1.0; else neg[g] += 1.0;
    }
    for (Py_ssize_t j = 0; j <= g; j++) {
        double p = from_bits(keys[j]), loss = 0.0;
        /* times how many rows share it; no 0 * inf */
        if (pos[j] > 0.0) loss += pos[j] * order_loss(1, p);
        if (neg[j] > 0.0) loss += neg[j] * order_loss(0, p);
        weight[j] = neg[j] + pos[j];
        wp[j] = weight[j] * p;
        wloss[j] = loss;
    }
    return g + 1;
}

/* The groups of rows with equal keys (float64, -0.0 as 0.0), in key order: per group the first
 * row's prediction (in row order), the weight of negatives and of positives, sum w p, sum w loss
 * (0 for a row of weight 0, even an infinite loss) and the weight. Groups of weight 0 are left
 * out. w NULL: every weight 1. Sums run in row order within a group. Returns the group count,
 * -1 when out of memory. */
static Py_ssize_t order_key_groups(const double *key, const uint8_t *y, const double *p,
                                   const double *loss, const double *w, Py_ssize_t n,
                                   double *p_u, double *neg, double *pos, double *wp,
                                   double *wloss, double *weight) {
    int64_t *order = order_alloc((size_t)n * sizeof(int64_t));
    if (!order || order_argsort(key, order, n, 0) < 0) { free(order); return -1; }
    Py_ssize_t g = -1;
    uint64_t last = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t r = order[i];
        uint64_t k = order_key(key[r]);
        if (g < 0 || k != last) {
            if (g < 0 || weight[g] > 0.0) g++;  /* a group of weight 0 is overwritten */
            last = k;
            p_u[g] = p[r];
            neg[g] = pos[g] = wp[g] = wloss[g] = weight[g] = 0.0;
        }
        double wr = w ? w[r] : 1.0;
        if (y[r]) pos[g] += wr; else neg[g] += wr;
        weight[g] += wr;
        wp[g] += wr * p[r];
        if (wr > 0.0) wloss[g] += w ? wr * loss[r] : loss[r];
    }
    free(order);
    if (g >= 0 && !(weight[g] > 0.0)) g--;
    return g + 1;
}

/* The rows worst first (loss descending, ties in row order) with their cumulative weight W_i and
 * weighted loss L_i (0 for a row of weight 0): for each target t (ascending), the first row i
 * with W_i >= t (the last row if none), as W_(i-1), L_(i-1), W_i, L_i in out (4 per target).
 * The sums run in that order, as np.cumsum over the sorted rows. total_out: the weighted loss of
 * every row, summed in row order with compensation. Returns -1 when out of memory. */
static int order_worst(const double *loss, const double *w, Py_ssize_t n, const double *targets,
                       Py_ssize_t m, double *out, double *total_out) {
    double total = 0.0, err = 0.0, plain = 0.0;
    for (Py_ssize_t t = 0; t < 4 * m; t++) out[t] = 0.0;  /* no rows: nothing taken */
    for (Py_ssize_t i = 0; i < n; i++) {
        double term = w[i] > 0.0 ? w[i] * loss[i] : 0.0;
        add2(&total, &err, term);
        plain += term;
    }
    *total_out = isfinite(plain) ? total + err : plain;  /* an infinite term: inf, not inf - inf */
    int64_t *order = order_alloc((size_t)n * sizeof(int64_t));
    if (!order || order_argsort(loss, order, n, 1) < 0) { free(order); return -1; }
    double cw = 0.0, cl = 0.0, before_w = 0.0, before_l = 0.0;
    Py_ssize_t t = 0;
    for (Py_ssize_t i = 0; i < n && t < m; i++) {
        int64_t r = order[i];
        double wr = w[r];
        double wl = wr > 0.0 ? wr * loss[r] : 0.0;
        before_w = cw;
        before_l = cl;
        cw += wr;
        cl += wl;
        for (; t < m && (cw >= targets[t] || i == n - 1); t++) {
            out[4 * t] = before_w; out[4 * t + 1] = before_l;
            out[4 * t + 2] = cw; out[4 * t + 3] = cl;
        }
    }
    free(order);
    return 0;
}

/* The isotonic fit of blocks (negative, positive weight) in order: a block pools with the one
 * before while that one's positive share is at least its own, so the pooled blocks' shares rise
 * strictly (the fit's level sets). Shares, not cross products p2 (n1 + p1), are compared: those
 * leave float64 for weights of 1e200 and underflow for 1e-200. Returns the block count; starts,
 * out_neg and out_pos (n long) hold the blocks. A block of zero weight (share NaN) pools with
 * nothing. */
static Py_ssize_t order_pool(const double *neg, const double *pos, Py_ssize_t n, int64_t *starts,
                             double *out_neg, double *out_pos) {
    Py_ssize_t top = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        starts[top] = i;
        out_neg[top] = neg[i];
        out_pos[top] = pos[i];
        top++;
        while (top > 1 && out_pos[top - 2] / (out_neg[top - 2] + out_pos[top - 2])
                              >= out_pos[top - 1] / (out_neg[top - 1] + out_pos[top - 1])) {
            out_neg[top - 2] += out_neg[top - 1];
            out_pos[top - 2] += out_pos[top - 1];
            top--;
        }
    }
    return top;
}

/* sort_keys(keys, scratch): keys (int64 or uint64, n) sorted in place as unsigned integers. */
static PyObject *py_sort_keys(PyObject *self, PyObject *args) {
    PyObject *ko, *so;
    if (!PyArg_ParseTuple(args, "OO", &ko, &so)) return NULL;
    Buf k, s;
    s.held = 0;
    /* a refused buffer may be held already (a wrong item size): released, not leaked */
    if (get_array(ko, &k, 1, T_U64, 0, "keys") < 0) { release(&k); return NULL; }
    Py_ssize_t n = k.view.len / 8;
    if (get_array(so, &s, 1, T_U64, n, "scratch") < 0) { release(&k); release(&s); return NULL; }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = order_sort_keys(k.view.buf, s.view.buf, n);
    Py_END_ALLOW_THREADS
    release(&k); release(&s);
    if (status < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* argsort(values, order, descending): order (int64, n) = np.argsort(values, kind="stable"), or
 * np.argsort(-values, kind="stable") when descending; values float64 without NaN. */
static PyObject *py_argsort(PyObject *self, PyObject *args) {
    PyObject *vo, *oo;
    int descending;
    if (!PyArg_ParseTuple(args, "OOp", &vo, &oo, &descending)) return NULL;
    Buf v, o;
    o.held = 0;
    if (get_array(vo, &v, 0, T_F64, 0, "values") < 0) { release(&v); return NULL; }
    Py_ssize_t n = v.view.len / 8;
    if (get_array(oo, &o, 1, T_I64, n, "order") < 0) { release(&v); release(&o); return NULL; }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = order_argsort(v.view.buf, o.view.buf, n, descending);
    Py_END_ALLOW_THREADS
    release(&v); release(&o);
    if (status < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* pool(neg, pos, starts, out_neg, out_pos) -> the number of pooled blocks. */
static PyObject *py_pool(PyObject *self, PyObject *args) {
    PyObject *no, *po, *so, *ono, *opo;
    if (!PyArg_ParseTuple(args, "OOOOO", &no, &po, &so, &ono, &opo)) return NULL;
    Buf a, b, s, on, op;
    b.held = s.held = on.held = op.held = 0;
    if (get_array(no, &a, 0, T_F64, 0, "neg") < 0) { release(&a); return NULL; }
    Py_ssize_t n = a.view.len / 8;
    if (get_array(po, &b, 0, T_F64, n, "pos") < 0 || get_array(so, &s, 1, T_I64, n, "starts") < 0
        || get_array(ono, &on, 1, T_F64, n, "out_neg") < 0
        || get_array(opo, &op, 1, T_F64, n, "out_pos") < 0) {
        release(&a); release(&b); release(&s); release(&on); release(&op);
        return NULL;
    }
    Py_ssize_t count;
    Py_BEGIN_ALLOW_THREADS
    count = order_pool(a.view.buf, b.view.buf, n, s.view.buf, on.view.buf, op.view.buf);
    Py_END_ALLOW_THREADS
    release(&a); release(&b); release(&s); release(&on); release(&op);
    return PyLong_FromSsize_t(count);
}

/* probability_groups(keys, neg, pos, wp, wloss, weight) -> count; keys sorted uint64, and
 * overwritten: see order_probability_groups. */
static PyObject *py_probability_groups(PyObject *self, PyObject *args) {
    PyObject *o[6];
    if (!PyArg_ParseTuple(args, "OOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5])) return NULL;
    Buf b[6];
    for (int i = 0; i < 6; i++) b[i].held = 0;
    Py_ssize_t count = -1;
    if (get_array(o[0], &b[0], 1, T_U64, 0, "keys") < 0) goto done;
    Py_ssize_t n = b[0].view.len / 8;
    for (int i = 1; i < 6; i++)
        if (get_array(o[i], &b[i], 1, T_F64, n, "out") < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    count = order_probability_groups(b[0].view.buf, n, b[1].view.buf, b[2].view.buf, b[3].view.buf,
                                     b[4].view.buf, b[5].view.buf);
    Py_END_ALLOW_THREADS
done:
    for (int i = 0; i < 6; i++) release(&b[i]);
    return count < 0 ? NULL : PyLong_FromSsize_t(count);
}

/* key_groups(key, y, p, loss, w, p_u, neg, pos, wp, wloss, weight) -> count; key, p, loss, w
 * float64 (w None: unweighted), y one byte per row (0: negative). */
static PyObject *py_key_groups(PyObject *self, PyObject *args) {
    PyObject *o[11];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6],
                          &o[7], &o[8], &o[9], &o[10])) return NULL;
    Buf b[11];
    for (int i = 0; i < 11; i++) b[i].held = 0;
    Py_ssize_t count = -2;
    if (get_array(o[0], &b[0], 0, T_F64, 0, "key") < 0) goto done;
    Py_ssize_t n = b[0].view.len / 8;
    if (get_array(o[1], &b[1], 0, T_U8, n, "y") < 0 || get_array(o[2], &b[2], 0, T_F64, n, "p") < 0
        || get_array(o[3], &b[3], 0, T_F64, n, "loss") < 0 || get_buffer(o[4], &b[4], 0, T_F64, n, "w") < 0)
        goto done;
    for (int i = 5; i < 11; i++)
        if (get_array(o[i], &b[i], 1, T_F64, n, "out") < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    count = order_key_groups(b[0].view.buf, b[1].view.buf, b[2].view.buf, b[3].view.buf,
                             b[4].held ? b[4].view.buf : NULL, n, b[5].view.buf, b[6].view.buf,
                             b[7].view.buf, b[8].view.buf, b[9].view.buf, b[10].view.buf);
    Py_END_ALLOW_THREADS
done:
    for (int i = 0; i < 11; i++) release(&b[i]);
    if (count == -1) return PyErr_NoMemory();
    return count < 0 ? NULL : PyLong_FromSsize_t(count);
}

/* worst(loss, w, targets, out) -> total: see order_worst; out float64, 4 per target. */
static PyObject *py_worst(PyObject *self, PyObject *args) {
    PyObject *o[4];
    if (!PyArg_ParseTuple(args, "OOOO", &o[0], &o[1], &o[2], &o[3])) return NULL;
    Buf b[4];
    for (int i = 0; i < 4; i++) b[i].held = 0;
    int status = -2;
    double total = 0.0;
    if (get_array(o[0], &b[0], 0, T_F64, 0, "loss") < 0) goto done;
    Py_ssize_t n = b[0].view.len / 8;
    if (get_array(o[1], &b[1], 0, T_F64, n, "w") < 0 || get_array(o[2], &b[2], 0, T_F64, 0, "targets") < 0)
        goto done;
    Py_ssize_t m = b[2].view.len / 8;
    if (get_array(o[3], &b[3], 1, T_F64, 4 * m, "out") < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    status = order_worst(b[0].view.buf, b[1].view.buf, n, b[2].view.buf, m, b[3].view.buf, &total);
    Py_END_ALLOW_THREADS
done:
    for (int i = 0; i < 4; i++) release(&b[i]);
    if (status == -1) return PyErr_NoMemory();
    if (status < 0) return NULL;
    return PyFloat_FromDouble(total);
}

#define ORDERING_METHODS \
    {"worst", py_worst, METH_VARARGS, "Cumulative weight and loss of the rows worst first, at targets."}, \
    {"probability_groups", py_probability_groups, METH_VARARGS, "Groups of sorted probability keys."}, \
    {"key_groups", py_key_groups, METH_VARARGS, "Groups of rows with equal float64 keys, in key order."}, \
    {"sort_keys", py_sort_keys, METH_VARARGS, "Sort 64-bit keys in place (unsigned order)."}, \
    {"argsort", py_argsort, METH_VARARGS, "Stable argsort of float64 values."}, \
    {"pool", py_pool, METH_VARARGS, "Pool adjacent violators (isotonic fit of blocks)."},
