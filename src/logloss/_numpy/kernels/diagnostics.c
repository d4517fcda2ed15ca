/* The diagnostics kernel of logloss.diagnose / DiagnosticsState (included by kernels.c, after its
 * Python helpers; everything here is static and prefixed diag_).
 *
 * One pass per batch over a range [lo, hi) of hard labels (0/1, any dtype), predictions
 * (probabilities or logits, float32/float64) and optional weights and segment codes, with the GIL
 * released, adds everything a DiagnosticsState keeps:
 *   - the prediction histogram: resolution bins uniform in logit over [-20, 20] plus a bin for each
 *     tail; per bin the weight of negatives, of positives, the weighted prediction, the weighted
 *     loss and the row count (DIAG_HIST doubles per bin, in _diagnostics._HIST order);
 *   - the loss histogram: LOSS_BINS bins (50 a decade from 1e-16 to 1e4, one below, one above),
 *     per class the weight, weighted loss and row count (DIAG_LOSS doubles per bin);
 *   - per segment (codes given): count, weight, weighted label, prediction, loss, Brier term and
 *     infinite losses (DIAG_SEGMENT doubles, _diagnostics._SEGMENT order);
 *   (without weights, shorter layouts: DIAG_HIST_U, DIAG_LOSS_U, DIAG_SEGMENT_U, their weights
 *   being their counts);
 *   - compensated totals (DIAG_TOTALS, _diagnostics._TOTALS order) and integer counts;
 *   - candidates for the k worst rows: every live row whose loss beats a running threshold.
 * The histograms and segment sums are the caller's per-thread arrays (added to, never cleared);
 * totals, counts and candidates are per call.
 *
 * Losses are those of the other kernels: probabilities -log p or -log(1 - p) with 1 - p = a + c
 * exact (log_plus, within 1 ulp; p below the smallest normal or 1 - p = 0 by libm); logits
 * softplus_exact (within 1 ulp; below SOFTPLUS_LOW libm's exp). The logit of a probability is
 * log p - log(1 - p) from the same two logs. Totals are pairwise block sums (tree_sum) added with
 * Neumaier's compensation; histogram cells are plain float64 sums, as np.bincount makes them.
 *
 * The caller validates first (diag_check_range, every range of the batch) so that the update,
 * which adds into arrays that outlive the call, never stops half way. */

#define DIAG_HIST 5     /* negative weight, positive weight, w p, w loss, count */
#define DIAG_LOSS 6     /* per class (negative, positive): weight, w loss, count */
#define DIAG_SEGMENT 7  /* count, weight, w y, w p, w loss, w (p - y)**2, infinite */
#define DIAG_HIST_U 4     /* unweighted: negatives, positives, p, loss */
#define DIAG_LOSS_U 4     /* unweighted, per class: loss, count */
#define DIAG_SEGMENT_U 6  /* unweighted: count, positives, p, loss, (p - y)**2, infinite */
#define DIAG_TOTALS 10  /* weight, label, prediction, loss, brier, loss_positive, loss_negative,
                         * weight_negative, confident_weight, confident_loss */
#define DIAG_COUNTS 9   /* count, positives, infinite, infinite_positive, confident, 4 caps */
#define DIAG_LOSS_LOW (-16)
#define DIAG_LOSS_HIGH 4
#define DIAG_PER_DECADE 50
#define DIAG_LOSS_BINS ((DIAG_LOSS_HIGH - DIAG_LOSS_LOW) * DIAG_PER_DECADE + 2)
#define DIAG_LOGIT_RANGE 20.0
#define DIAG_CAPS 4

static const double DIAG_INV_LN10 = 0.43429448190325182765;
/* -log(0.01): a confident mistake; the caps of Keras, XGBoost/LightGBM, scikit-learn, PyTorch */
static const double DIAG_CONFIDENT = 4.605170185988091;
static const double DIAG_CAP[DIAG_CAPS] = {16.11809565095832, 34.538776394910684,
                                           36.04365338911715, 100.0};

/* Whether a loss lies within 4 ulps (relative 1e-15) of the confident-mistake bound or a cap. */
static inline int64_t diag_near_threshold(double l) {
    const double r = 1e-15;
    return (fabs(l - DIAG_CONFIDENT) <= r * DIAG_CONFIDENT) | (fabs(l - DIAG_CAP[0]) <= r * DIAG_CAP[0])
         | (fabs(l - DIAG_CAP[1]) <= r * DIAG_CAP[1]) | (fabs(l - DIAG_CAP[2]) <= r * DIAG_CAP[2])
         | (fabs(l - DIAG_CAP[3]) <= r * DIAG_CAP[3]);
}


typedef double diag_v4 __attribute__((vector_size(32)));
typedef int64_t diag_i4 __attribute__((vector_size(32)));
/* the fields of a loss-histogram bin (unweighted) that a negative / a positive adds to */
static const diag_i4 DIAG_CLASS_MASK[2] = {{-1, -1, 0, 0}, {0, 0, -1, -1}};

typedef struct {
    double y[BLOCK], x[BLOCK], w[BLOCK], p[BLOCK], loss[BLOCK], z[BLOCK];
    double t[DIAG_TOTALS][BLOCK];
    int64_t rows[BLOCK];
    int32_t cell[BLOCK], lbin[BLOCK];
    void *raw;
} DiagBuffers;

static DiagBuffers *diag_new_buffers(void) {
    void *raw = PyMem_RawMalloc(sizeof(DiagBuffers) + 64);
    if (!raw) return NULL;
    DiagBuffers *b = (DiagBuffers *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    b->raw = raw;
    return b;
}

typedef struct {
    const void *codes; int ct; Py_ssize_t ncodes;
    const int64_t *remap;     /* batch code -> row of `segments` */
    double *hist;             /* (resolution + 2) x DIAG_HIST (_U without weights), added to */
    double *loss_hist;        /* DIAG_LOSS_BINS x DIAG_LOSS (_U), added to */
    double *segments;         /* rows x DIAG_SEGMENT (_U), added to; NULL without codes */
    double *losses;           /* per-row loss out (float64, whole batch), or NULL */
    int64_t *cand_index;      /* candidates for the worst rows: capacity cap */
    double *cand_loss;
    Py_ssize_t cap, k, ncand;
    double threshold;         /* a row enters only with a loss above this */
    int resolution;
    double totals[2 * DIAG_TOTALS];
    int64_t counts[DIAG_COUNTS];
} DiagOut;

/* sum += v with the error kept, for non-negative terms that may be infinite. */
static inline void diag_add(double *sum, double *err, double v) {
    if (v < INFINITY && *sum < INFINITY) add2(sum, err, v);
    else { *sum += v; *err = 0.0; }
}

#define DIAG_DECODE(T) { const T *src = (const T *)codes + b; for (int i = 0; i < m; i++) out[i] = (int64_t)src[i]; } break;

/* Codes of samples [b, b + m) as int64 (uint64 above 2**63: negative), and whether all are in
 * [0, ncodes). One loop per dtype, so that each vectorizes. */
static int diag_decode(const void *codes, int ct, Py_ssize_t ncodes, Py_ssize_t b, int m,
                       int64_t *restrict out) {
    switch (ct) {
    case T_I8: DIAG_DECODE(int8_t)
    case T_I16: DIAG_DECODE(int16_t)
    case T_I32: DIAG_DECODE(int32_t)
    case T_U8: DIAG_DECODE(uint8_t)
    case T_U16: DIAG_DECODE(uint16_t)
    case T_U32: DIAG_DECODE(uint32_t)
    default: DIAG_DECODE(int64_t)
    }
    int64_t ok = 1;
    for (int i = 0; i < m; i++) ok &= (out[i] >= 0) & (out[i] < ncodes);
    return (int)ok;
}

/* The segment rows of samples [b, b + m): remap[code]; 0 where a code is outside [0, ncodes). */
static int diag_segment_rows(const void *codes, int ct, Py_ssize_t ncodes, const int64_t *remap,
                             Py_ssize_t b, int m, int64_t *restrict out) {
    if (!diag_decode(codes, ct, ncodes, b, m, out)) return 0;
    for (int i = 0; i < m; i++) out[i] = remap[out[i]];
    return 1;
}

/* Whether samples [b, b + m) of labels of dtype yt are all 0 or 1; -1 for a dtype read through
 * the loader. int8/uint8/bool and float32/float64 are read as they are (no conversion pass). */
static inline int diag_labels_ok(const void *base, int yt, Py_ssize_t b, int m) {
    int64_t ok = 1;
    switch (yt) {
    case T_BOOL: case T_I8: case T_U8: {
        const uint8_t *v = (const uint8_t *)base + b;
        for (int i = 0; i < m; i++) ok &= (v[i] & 0xFE) == 0;
        return (int)ok; }
    case T_F32: {
        const float *v = (const float *)base + b;
        for (int i = 0; i < m; i++) ok &= (v[i] == 0.0f) | (v[i] == 1.0f);
        return (int)ok; }
    case T_F64: {
        const double *v = (const double *)base + b;
        for (int i = 0; i < m; i++) ok &= (v[i] == 0.0) | (v[i] == 1.0);
        return (int)ok; }
    default: return -1;
    }
}

/* Whether [lo, hi) is what the update takes: labels 0 or 1, probabilities in [0, 1] (logits not
 * NaN), weights finite and >= 0, codes in [0, ncodes). Branch-free per block. */
static int diag_check_range(const Inputs *in, const void *codes, int ct, Py_ssize_t ncodes,
                            Py_ssize_t lo, Py_ssize_t hi) {
    Buffers *B = new_buffers();
    if (!B) return -1;
    int status = OK;
    for (Py_ssize_t b = lo; b < hi; b += BLOCK) {
        int m = (int)(hi - b < BLOCK ? hi - b : BLOCK);
        int64_t ok = diag_labels_ok(in->y, in->yt, b, m);
        if (ok < 0) {
            const double *y = load(in->y, in->yt, b, m, B->y);
            ok = 1;
            for (int i = 0; i < m; i++) ok &= (y[i] == 0.0) | (y[i] == 1.0);
        }
        if (in->xt == T_F32) {
            const float *x = (const float *)in->x + b;
            if (in->logits) for (int i = 0; i < m; i++) ok &= x[i] == x[i];
            else for (int i = 0; i < m; i++) ok &= (x[i] >= 0.0f) & (x[i] <= 1.0f);
        } else {
            const double *x = load(in->x, in->xt, b, m, B->x);
            if (in->logits) for (int i = 0; i < m; i++) ok &= x[i] == x[i];
            else for (int i = 0; i < m; i++) ok &= (x[i] >= 0.0) & (x[i] <= 1.0);
        }
        if (in->w) {
            const double *w = load(in->w, in->wt, b, m, B->w);
            for (int i = 0; i < m; i++) ok &= weight_ok(w[i]);
        }
        if (codes) {
            int64_t decoded[BLOCK];
            ok &= diag_decode(codes, ct, ncodes, b, m, decoded);
        }
        if (!ok) { status = REFERENCE; break; }
    }
    free_buffers(B);
    return status;
}

/* The loss bin, floor((log10 loss + 16) 50) + 1 (0 below 1e-16, NaN and 0 too; the last from 1e4
 * and infinity), from the position its formula gives: log_core, within 1 ulp of log. */
static inline double diag_bin_position(double arg) {
    return (log_core(arg, 0.0, 0) * DIAG_INV_LN10 - DIAG_LOSS_LOW) * DIAG_PER_DECADE;
}
static inline int32_t diag_bin_of(double li, double lp) {
    const double top_bin = (double)(DIAG_LOSS_BINS - 2);
    lp = li < INFINITY ? lp : top_bin;
    lp = lp < top_bin ? lp : top_bin;
    lp = li >= 1e-300 ? lp : -1.0;
    lp = lp >= 0.0 ? lp : -1.0;
    return (int32_t)lp + 1;
}

/* The same bins without that log (no division): log a = k ln 2 + log1p(f), f = z - 1 as in
 * log_core, log1p(f) = f q(f), q of degree 9 fitted on [sqrt(1/2) - 1, sqrt 2 - 1] (within
 * 1.5e-9). This position is within 50 / ln 10 * 1.5e-9 + a few ulps of 2**14 < 4e-8 of the exact
 * one (tested against mpmath), diag_bin_position's within 1e-11: where this one is over
 * DIAG_BIN_MARGIN from an integer, both floor alike. A row within the margin (about two in a
 * million) takes diag_bin_position, so every bin is the formula's. */
static const double DIAG_BIN_MARGIN = 9.5367431640625e-07;  /* 2**-20 */
static const double DIAG_BIN_SCALE = 21.714724095162591;    /* 50 / ln 10 */
static inline double diag_bin_short(double a) {
    uint64_t ix = bits(a);
    uint64_t kb = (ix + ONE_BITS - SQRT_HALF_BITS) >> 52;
    double f = from_bits(ix - ((kb - 1023) << 52)) - 1.0;
    double dk = from_bits(bits(SHIFTER) + kb) - (SHIFTER + 1023.0);
    double q = -7.638592457931412e-02;
    q = q * f + 1.2914170327933153e-01;
    q = q * f - 1.324084269267096e-01;
    q = q * f + 1.4180078718024952e-01;
    q = q * f - 1.660912650496067e-01;
    q = q * f + 2.000207167482522e-01;
    q = q * f - 2.500158512304518e-01;
    q = q * f + 3.333332402363846e-01;
    q = q * f - 4.9999988294141867e-01;
    q = q * f + 1.0000000000182148e+00;
    return (dk * LN2 + f * q) * DIAG_BIN_SCALE - DIAG_LOSS_LOW * DIAG_PER_DECADE;
}

/* The loss bins of loss[:m] into lbin; exact = 1: diag_bin_position for every row (tests). */
static void diag_loss_bins(const double *restrict loss, int32_t *restrict lbin, int m, int exact) {
    if (exact) {
        for (int i = 0; i < m; i++) {
            double li = loss[i];
            double arg = (li >= 1e-300) & (li < INFINITY) ? li : 1.0;
            lbin[i] = diag_bin_of(li, diag_bin_position(arg));
        }
        return;
    }
    int64_t near = 0;
    for (int i = 0; i < m; i++) {
        double li = loss[i];
        int64_t normal = (li >= 1e-300) & (li < INFINITY);
        double lp = diag_bin_short(normal ? li : 1.0);
        near |= normal & (fabs(lp - nearbyint(lp)) <= DIAG_BIN_MARGIN);
        lbin[i] = diag_bin_of(li, lp);
    }
    if (near) {
        for (int i = 0; i < m; i++) {
            double li = loss[i];
            if (!(li >= 1e-300) || !(li < INFINITY)) continue;
            double lp = diag_bin_short(li);
            if (fabs(lp - nearbyint(lp)) <= DIAG_BIN_MARGIN) lbin[i] = diag_bin_of(li, diag_bin_position(li));
        }
    }
}

typedef struct { double loss; int64_t index; } DiagCandidate;

/* Worst first; among equal losses the earlier row first. */
static int diag_compare(const void *a, const void *b) {
    const DiagCandidate *x = a, *y = b;
    if (x->loss > y->loss) return -1;
    if (x->loss < y->loss) return 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Keep the k worst candidates (sorted) and raise the threshold to the k-th. */
static int diag_prune(DiagOut *o) {
    if (o->ncand <= 1) return 0;
    DiagCandidate *tmp = PyMem_RawMalloc((size_t)o->ncand * sizeof(DiagCandidate));
    if (!tmp) return -1;
    for (Py_ssize_t i = 0; i < o->ncand; i++) { tmp[i].loss = o->cand_loss[i]; tmp[i].index = o->cand_index[i]; }
    qsort(tmp, (size_t)o->ncand, sizeof(DiagCandidate), diag_compare);
    Py_ssize_t keep = o->ncand < o->k ? o->ncand : o->k;
    for (Py_ssize_t i = 0; i < keep; i++) { o->cand_loss[i] = tmp[i].loss; o->cand_index[i] = tmp[i].index; }
    PyMem_RawFree(tmp);
    o->ncand = keep;
    if (keep == o->k && o->cand_loss[keep - 1] > o->threshold) o->threshold = o->cand_loss[keep - 1];
    return 0;
}

/* Per block: probabilities. loss, logit z and the two cells; the rows only libm handles after. */
#define DIAG_PROBABILITY_BLOCK(NAME, T) \
static void NAME(DiagBuffers *B, const double *restrict y, const T *restrict x, int m) { \
    double *restrict loss = B->loss, *restrict z = B->z, *restrict p = B->p; \
    int64_t rare = 0; \
    for (int i = 0; i < m; i++) { \
        double pi = (double)x[i]; \
        double a = 1.0 - pi; \
        double c = -pi - (a - 1.0); \
        int64_t low = !(pi >= TINY), high = !(a >= TINY); \
        rare |= low | high; \
        double lp = log_core(low ? 1.0 : pi, 0.0, 0); \
        double lq = log_plus(high ? 1.0 : a, high ? 0.0 : c); \
        loss[i] = y[i] != 0.0 ? -lp : -lq; \
        z[i] = lp - lq; \
        p[i] = pi; \
    } \
    /* A loss within a few ulps of a threshold the rows are counted by (a confident mistake, a \
     * cap): libm's logs, as the NumPy path takes, so both count the same rows. log_core may be \
     * 1 ulp off: at p = 0.01 exactly (predictions rounded to 2 decimals) it gave 1 ulp above \
     * -log(0.01), and every such row was counted a confident mistake. */ \
    int64_t near = 0; \
    for (int i = 0; i < m; i++) near |= diag_near_threshold(loss[i]); \
    if (near) { \
        for (int i = 0; i < m; i++) { \
            if (!diag_near_threshold(loss[i])) continue; \
            double pi = (double)x[i]; \
            double lp = log(pi), lq = log1p(-pi); \
            loss[i] = y[i] != 0.0 ? -lp : -lq; \
            z[i] = lp - lq; \
        } \
    } \
    if (rare) { \
        for (int i = 0; i < m; i++) { \
            double pi = (double)x[i]; \
            if (pi >= TINY && 1.0 - pi >= TINY) continue; \
            double lp = log(pi), lq = log1p(-pi);  /* -inf at 0 and 1 */ \
            loss[i] = y[i] != 0.0 ? -lp : -lq; \
            z[i] = lp - lq; \
        } \
    } \
}

/* Per block: logits. softplus of s = -z (positives) or z, the sigmoid as prediction. */
#define DIAG_LOGIT_BLOCK(NAME, T) \
static void NAME(DiagBuffers *B, const double *restrict y, const T *restrict x, int m) { \
    double *restrict loss = B->loss, *restrict z = B->z, *restrict p = B->p; \
    int64_t rare = 0; \
    for (int i = 0; i < m; i++) { \
        double zi = (double)x[i]; \
        double si = y[i] != 0.0 ? -zi : zi; \
        rare |= !(si >= SOFTPLUS_LOW); \
        double c = si < SOFTPLUS_LOW ? SOFTPLUS_LOW : (si > SOFTPLUS_HIGH ? SOFTPLUS_HIGH : si); \
        double v = softplus_exact(c); \
        loss[i] = si >= SOFTPLUS_HIGH ? si : v; \
        double a = fabs(zi); \
        double e = exp_neg(-(a < EXP_LIMIT ? a : EXP_LIMIT)); \
        double sig = (zi >= 0.0 ? 1.0 : e) / (1.0 + e); \
        p[i] = a > EXP_LIMIT ? (zi > 0.0 ? 1.0 : 0.0) : sig; \
        z[i] = zi; \
    } \
    if (rare) { \
        for (int i = 0; i < m; i++) { \
            double si = y[i] != 0.0 ? -(double)x[i] : (double)x[i]; \
            if (si < SOFTPLUS_LOW) loss[i] = exp(si); \
        } \
    } \
}

/* float32 predictions are read as they are (no widening pass into a buffer first) */
DIAG_PROBABILITY_BLOCK(diag_probability_block, double)
DIAG_PROBABILITY_BLOCK(diag_probability_block_f32, float)
DIAG_LOGIT_BLOCK(diag_logit_block, double)
DIAG_LOGIT_BLOCK(diag_logit_block_f32, float)

/* The update over [lo, hi). Two layouts: weighted batches add into DIAG_HIST / DIAG_LOSS /
 * DIAG_SEGMENT doubles per cell, unweighted ones into the shorter DIAG_HIST_U / DIAG_LOSS_U /
 * DIAG_SEGMENT_U (their weights are their counts: two fewer adds per sample). */
static int diag_range(const Inputs *in, DiagOut *o, Py_ssize_t lo, Py_ssize_t hi) {
    DiagBuffers *B = diag_new_buffers();
    if (!B) return -1;
    const double R = (double)o->resolution;
    const double scale = R / (2.0 * DIAG_LOGIT_RANGE);
    const double top_cell = R;  /* cells 0 (below) .. R + 1 (at and above +20) */
    const int weighted = in->w != NULL;
    int status = OK;
    for (int i = 0; i < BLOCK; i++) B->w[i] = 1.0;
    for (Py_ssize_t b = lo; b < hi; b += BLOCK) {
        int m = (int)(hi - b < BLOCK ? hi - b : BLOCK);
        const double *y = load(in->y, in->yt, b, m, B->y);
        const double *w = weighted ? load(in->w, in->wt, b, m, B->w) : B->w;
        if (in->xt == T_F32) {
            const float *x = (const float *)in->x + b;
            if (in->logits) diag_logit_block_f32(B, y, x, m);
            else diag_probability_block_f32(B, y, x, m);
        } else {
            const double *x = load(in->x, in->xt, b, m, B->x);
            if (in->logits) diag_logit_block(B, y, x, m);
            else diag_probability_block(B, y, x, m);
        }
        const double *restrict loss = B->loss, *restrict z = B->z, *restrict p = B->p;
        double *restrict t0 = B->t[0], *restrict t1 = B->t[1], *restrict t2 = B->t[2], *restrict t3 = B->t[3],
               *restrict t4 = B->t[4], *restrict t5 = B->t[5], *restrict t6 = B->t[6], *restrict t7 = B->t[7],
               *restrict t8 = B->t[8], *restrict t9 = B->t[9];
        int64_t positives = 0, infinite = 0, infinite_pos = 0, confident = 0;
        int64_t cap0 = 0, cap1 = 0, cap2 = 0, cap3 = 0;
        if (weighted) {
            for (int i = 0; i < m; i++) {
                double yi = y[i], wi = w[i], li = loss[i], pi = p[i];
                double wl = wi > 0.0 ? wi * li : 0.0;  /* a zero weight drops an infinite loss */
                double wy = wi * yi;
                double d = pi - yi;
                /* a row of weight 0 carries none of the loss: no confident mistake, as it is
                 * no infinite loss, and no row a framework's cap changes */
                int64_t live = wi > 0.0;
                int64_t conf = (li > DIAG_CONFIDENT) & live;
                /* an infinite loss, not a finite one whose product with its weight overflows */
                int64_t inf = (li == INFINITY) & live;
                int64_t positive = yi != 0.0;
                t0[i] = wi;
                t1[i] = wy;
                t2[i] = wi * pi;
                t3[i] = wl;
                t4[i] = wi * (d * d);
                t5[i] = positive ? wl : 0.0;
                t6[i] = positive ? 0.0 : wl;
                t7[i] = wi - wy;
                t8[i] = conf ? wi : 0.0;
                t9[i] = conf ? wl : 0.0;
                positives += positive;
                infinite += inf;
                infinite_pos += inf & positive;
                confident += conf;
                cap0 += (li > DIAG_CAP[0]) & live;
                cap1 += (li > DIAG_CAP[1]) & live;
                cap2 += (li > DIAG_CAP[2]) & live;
                cap3 += (li > DIAG_CAP[3]) & live;
            }
        } else {
            for (int i = 0; i < m; i++) {
                double yi = y[i], li = loss[i], pi = p[i];
                double d = pi - yi;
                int64_t conf = li > DIAG_CONFIDENT;
                int64_t inf = li == INFINITY;
                int64_t positive = yi != 0.0;
                t2[i] = pi;
                t3[i] = li;
                t4[i] = d * d;
                t5[i] = positive ? li : 0.0;
                t6[i] = positive ? 0.0 : li;
                t9[i] = conf ? li : 0.0;
                positives += positive;
                infinite += inf;
                infinite_pos += inf & positive;
                confident += conf;
                cap0 += li > DIAG_CAP[0];
                cap1 += li > DIAG_CAP[1];
                cap2 += li > DIAG_CAP[2];
                cap3 += li > DIAG_CAP[3];
            }
        }
        /* prediction cell: floor((z + 20) R / 40) + 1, 0 below, R + 1 at the top */
        int32_t *restrict cell = B->cell, *restrict lbin = B->lbin;
        for (int i = 0; i < m; i++) {
            double pos = (z[i] + DIAG_LOGIT_RANGE) * scale;
            double cp = pos < 0.0 ? -1.0 : (pos > top_cell ? top_cell : pos);
            cell[i] = (int32_t)cp + 1;
        }
        diag_loss_bins(loss, lbin, m, 0);
        if (o->losses) memcpy(o->losses + b, loss, (size_t)m * sizeof(double));
        /* the scatter into the histograms */
        double *restrict hist = o->hist, *restrict lh = o->loss_hist;
        /* One vector add per cell, branch-free (the label is a coin flip): the other class's
         * fields get + 0.0, which changes no sum (they start at +0.0 and only ever have
         * non-negative terms added, so none is -0.0); selected by masks, since a loss times 0
         * would be NaN where the loss is infinite. */
        if (weighted) {
            for (int i = 0; i < m; i++) {
                int yi = y[i] != 0.0;
                double fy = (double)yi, wi = t0[i];
                double *h = hist + (Py_ssize_t)cell[i] * DIAG_HIST;
                diag_v4 hv, add = {wi * (1.0 - fy), wi * fy, t2[i], t3[i]};
                memcpy(&hv, h, sizeof hv);
                hv += add;
                memcpy(h, &hv, sizeof hv);
                h[4] += 1.0;
                double *g = lh + lbin[i] * DIAG_LOSS + 3 * yi;
                g[0] += wi;
                g[1] += t3[i];
                g[2] += 1.0;
            }
        } else {
            for (int i = 0; i < m; i++) {
                int yi = y[i] != 0.0;
                double fy = (double)yi, li = loss[i];
                double *h = hist + (Py_ssize_t)cell[i] * DIAG_HIST_U;
                diag_v4 hv, add = {1.0 - fy, fy, p[i], li};
                memcpy(&hv, h, sizeof hv);
                hv += add;
                memcpy(h, &hv, sizeof hv);
                double *g = lh + lbin[i] * DIAG_LOSS_U;
                diag_v4 gv, both = {li, 1.0, li, 1.0};
                diag_v4 gadd = (diag_v4)((diag_i4)both & DIAG_CLASS_MASK[yi]);
                memcpy(&gv, g, sizeof gv);
                gv += gadd;
                memcpy(g, &gv, sizeof gv);
            }
        }
        if (o->segments) {
            int64_t *restrict rows = B->rows;
            if (!diag_segment_rows(o->codes, o->ct, o->ncodes, o->remap, b, m, rows)) {
                status = REFERENCE;  /* unchecked input: what was added so far stays */
                goto done;
            }
            double *restrict segments = o->segments;
            if (weighted) {
                for (int i = 0; i < m; i++) {
                    double *s = segments + rows[i] * DIAG_SEGMENT;
                    s[0] += 1.0;
                    s[1] += t0[i];
                    s[2] += t1[i];
                    s[3] += t2[i];
                    s[4] += t3[i];
                    s[5] += t4[i];
                }
            } else {
                for (int i = 0; i < m; i++) {
                    double *s = segments + rows[i] * DIAG_SEGMENT_U;
                    s[0] += 1.0;
                    s[1] += y[i];
                    s[2] += t2[i];
                    s[3] += t3[i];
                    s[4] += t4[i];
                }
            }
            if (infinite) {
                int field = weighted ? DIAG_SEGMENT - 1 : DIAG_SEGMENT_U - 1;
                int fields = weighted ? DIAG_SEGMENT : DIAG_SEGMENT_U;
                for (int i = 0; i < m; i++)
                    if (loss[i] == INFINITY && (!weighted || w[i] > 0.0))
                        segments[rows[i] * fields + field] += 1.0;
            }
        }
        if (o->k > 0) {
            double threshold = o->threshold;
            int64_t any = 0;  /* most blocks have no candidate: one vectorized look first */
            for (int i = 0; i < m; i++) any |= (loss[i] > threshold) & (w[i] > 0.0);
            for (int i = 0; any && i < m; i++) {
                if (!(loss[i] > threshold) || !(w[i] > 0.0)) continue;
                if (o->ncand == o->cap) {
                    if (diag_prune(o) < 0) { status = -1; goto done; }
                    threshold = o->threshold;
                    if (!(loss[i] > threshold)) continue;
                }
                o->cand_loss[o->ncand] = loss[i];
                o->cand_index[o->ncand] = b + i;
                o->ncand++;
            }
        }
        /* the block's sums; the loss is the positives' plus the negatives' (one tree fewer),
         * and a block without a confident mistake adds 0 to the confident sums */
        double block[DIAG_TOTALS];
        if (weighted) {
            for (int j = 0; j < DIAG_TOTALS; j++) {
                if (j == 3 || ((j == 8 || j == 9) && !confident)) continue;
                block[j] = tree_sum(B->t[j], m);
            }
            if (!confident) block[8] = block[9] = 0.0;
            block[3] = block[5] + block[6];
            for (int j = 0; j < DIAG_TOTALS; j++)
                diag_add(&o->totals[2 * j], &o->totals[2 * j + 1], block[j]);
        } else {  /* weight, label, weight_negative, confident_weight: counts */
            static const int summed[] = {2, 4, 5, 6, 9};
            for (int q = 0; q < 5; q++) {
                int j = summed[q];
                block[j] = j == 9 && !confident ? 0.0 : tree_sum(B->t[j], m);
            }
            block[3] = block[5] + block[6];
            for (int q = 0; q < 5; q++) {
                int j = summed[q];
                diag_add(&o->totals[2 * j], &o->totals[2 * j + 1], block[j]);
            }
            diag_add(&o->totals[6], &o->totals[7], block[3]);
            diag_add(&o->totals[0], &o->totals[1], (double)m);
            diag_add(&o->totals[2], &o->totals[3], (double)positives);
            diag_add(&o->totals[14], &o->totals[15], (double)(m - positives));
            diag_add(&o->totals[16], &o->totals[17], (double)confident);
        }
        o->counts[0] += m;
        o->counts[1] += positives;
        o->counts[2] += infinite;
        o->counts[3] += infinite_pos;
        o->counts[4] += confident;
        o->counts[5] += cap0;
        o->counts[6] += cap1;
        o->counts[7] += cap2;
        o->counts[8] += cap3;
    }
    if (o->k > 0 && o->ncand > 0 && diag_prune(o) < 0) status = -1;
done:
    PyMem_RawFree(B->raw);
    return status;
}

/* diagnose_check(y, yt, x, xt, w, wt, codes, ct, ncodes, lo, hi, logits) -> status */
static PyObject *py_diagnose_check(PyObject *self, PyObject *args) {
    PyObject *yo, *xo, *wo, *co;
    int yt, xt, wt, ct, logits;
    Py_ssize_t ncodes, lo, hi;
    if (!PyArg_ParseTuple(args, "OiOiOiOinnnp", &yo, &yt, &xo, &xt, &wo, &wt, &co, &ct, &ncodes, &lo, &hi, &logits))
        return NULL;
    if (check_range(lo, hi) < 0) return NULL;
    if (co != Py_None && (ct == T_F16 || ct == T_F32 || ct == T_F64 || ct == T_BOOL)) {
        PyErr_SetString(PyExc_ValueError, "codes must be integers"); return NULL;
    }
    Buf y, x, w, c;
    x.held = w.held = c.held = 0;
    if (get_array(yo, &y, 0, yt, hi, "y") < 0 || get_array(xo, &x, 0, xt, hi, "x") < 0
        || get_buffer(wo, &w, 0, wt, hi, "w") < 0 || get_buffer(co, &c, 0, ct, hi, "codes") < 0) {
        release(&y); release(&x); release(&w); release(&c);
        return NULL;
    }
    Inputs in = {y.view.buf, yt, x.view.buf, xt, w.held ? w.view.buf : NULL, wt, logits, 0};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = diag_check_range(&in, c.held ? c.view.buf : NULL, ct, ncodes, lo, hi);
    Py_END_ALLOW_THREADS
    release(&y); release(&x); release(&w); release(&c);
    if (status < 0) return PyErr_NoMemory();
    return PyLong_FromLong(status);
}

/* diagnose(y, yt, x, xt, w, wt, codes, ct, remap, hist, loss_hist, segments, losses,
 *          cand_index, cand_loss, totals, counts, k, threshold, resolution, lo, hi, logits)
 * -> (status, candidates). Input valid (diagnose_check said so). hist: float64
 * (resolution + 2) * DIAG_HIST, loss_hist: DIAG_LOSS_BINS * DIAG_LOSS, segments: rows *
 * DIAG_SEGMENT with remap (int64, one row per code) or None; losses: float64 per row or None;
 * cand_*: capacity > k (int64, float64); totals: 2 * DIAG_TOTALS float64, counts: DIAG_COUNTS
 * int64, both set. */
static PyObject *py_diagnose(PyObject *self, PyObject *args) {
    PyObject *yo, *xo, *wo, *co, *ro, *ho, *lho, *so, *lo_, *cio, *clo, *to, *cno;
    int yt, xt, wt, ct, resolution, logits;
    Py_ssize_t k, lo, hi;
    double threshold;
    if (!PyArg_ParseTuple(args, "OiOiOiOiOOOOOOOOOndinnp", &yo, &yt, &xo, &xt, &wo, &wt, &co, &ct,
                          &ro, &ho, &lho, &so, &lo_, &cio, &clo, &to, &cno, &k, &threshold,
                          &resolution, &lo, &hi, &logits))
        return NULL;
    if (check_range(lo, hi) < 0) return NULL;
    if (resolution < 1 || k < 0) { PyErr_SetString(PyExc_ValueError, "bad resolution or k"); return NULL; }
    if ((co == Py_None) != (so == Py_None) || (co == Py_None) != (ro == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "codes, remap and segments go together"); return NULL;
    }
    if (co != Py_None && (ct == T_F16 || ct == T_F32 || ct == T_F64 || ct == T_BOOL)) {
        PyErr_SetString(PyExc_ValueError, "codes must be integers"); return NULL;
    }
    Buf y, x, w, c, r, h, lh, s, l, ci, cl, t, cn;
    x.held = w.held = c.held = r.held = h.held = lh.held = s.held = l.held = ci.held = cl.held = t.held = cn.held = 0;
    PyObject *result = NULL;
    if (get_array(yo, &y, 0, yt, hi, "y") < 0 || get_array(xo, &x, 0, xt, hi, "x") < 0
        || get_buffer(wo, &w, 0, wt, hi, "w") < 0 || get_buffer(co, &c, 0, ct, hi, "codes") < 0
        || get_buffer(ro, &r, 0, T_I64, 0, "remap") < 0
        || get_buffer(ho, &h, 1, T_F64, ((Py_ssize_t)resolution + 2) * (wo == Py_None ? DIAG_HIST_U : DIAG_HIST), "hist") < 0
        || get_buffer(lho, &lh, 1, T_F64, DIAG_LOSS_BINS * (wo == Py_None ? DIAG_LOSS_U : DIAG_LOSS), "loss_hist") < 0
        || get_buffer(so, &s, 1, T_F64, 0, "segments") < 0
        || get_buffer(lo_, &l, 1, T_F64, hi, "losses") < 0
        || get_buffer(cio, &ci, 1, T_I64, k + 1, "cand_index") < 0
        || get_buffer(clo, &cl, 1, T_F64, k + 1, "cand_loss") < 0
        || get_buffer(to, &t, 1, T_F64, 2 * DIAG_TOTALS, "totals") < 0
        || get_buffer(cno, &cn, 1, T_I64, DIAG_COUNTS, "counts") < 0)
        goto out;
    if (ci.view.len != cl.view.len) { PyErr_SetString(PyExc_ValueError, "candidate arrays differ"); goto out; }
    DiagOut o;
    memset(&o, 0, sizeof o);
    o.codes = c.held ? c.view.buf : NULL;
    o.ct = ct;
    o.remap = r.held ? r.view.buf : NULL;
    o.hist = h.view.buf;
    o.loss_hist = lh.view.buf;
    o.segments = s.held ? s.view.buf : NULL;
    o.losses = l.held ? l.view.buf : NULL;
    o.cand_index = ci.view.buf;
    o.cand_loss = cl.view.buf;
    o.cap = ci.view.len / 8;
    o.k = k;
    o.threshold = threshold;
    o.resolution = resolution;
    if (o.segments) {
        /* every code's row must be inside segments: checked here, once, not per row */
        Py_ssize_t rows = s.view.len / (8 * (wo == Py_None ? DIAG_SEGMENT_U : DIAG_SEGMENT)), n = r.view.len / 8;
        const int64_t *rm = o.remap;
        for (Py_ssize_t i = 0; i < n; i++)
            if (rm[i] < 0 || rm[i] >= rows) { PyErr_SetString(PyExc_ValueError, "remap outside segments"); goto out; }
        o.ncodes = n;
    }
    Inputs in = {y.view.buf, yt, x.view.buf, xt, w.held ? w.view.buf : NULL, wt, logits, 0};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = diag_range(&in, &o, lo, hi);
    Py_END_ALLOW_THREADS
    if (status < 0) { PyErr_NoMemory(); goto out; }
    memcpy(t.view.buf, o.totals, sizeof o.totals);
    memcpy(cn.view.buf, o.counts, sizeof o.counts);
    result = Py_BuildValue("in", status, o.ncand);
out:
    release(&y); release(&x); release(&w); release(&c); release(&r); release(&h); release(&lh);
    release(&s); release(&l); release(&ci); release(&cl); release(&t); release(&cn);
    return result;
}

/* diagnose_loss_bins(loss, out, mode): for tests, from float64 losses, the loss bins as the kernel
 * takes them (mode 0) or by the formula alone (1) into int32 out, or (2) diag_bin_short's
 * position of each normal loss into float64 out. */
static PyObject *py_diagnose_loss_bins(PyObject *self, PyObject *args) {
    PyObject *lo_, *oo;
    int mode;
    if (!PyArg_ParseTuple(args, "OOi", &lo_, &oo, &mode)) return NULL;
    if (mode < 0 || mode > 2) { PyErr_SetString(PyExc_ValueError, "mode: 0, 1 or 2"); return NULL; }
    Buf l, o;
    o.held = 0;
    if (get_array(lo_, &l, 0, T_F64, 0, "loss") < 0) { release(&l); return NULL; }
    Py_ssize_t n = l.view.len / 8;
    if (get_array(oo, &o, 1, mode == 2 ? T_F64 : T_I32, n, "out") < 0) { release(&l); release(&o); return NULL; }
    const double *loss = l.view.buf;
    if (mode == 2) {
        double *out = o.view.buf;
        for (Py_ssize_t i = 0; i < n; i++)
            out[i] = loss[i] >= 1e-300 && loss[i] < INFINITY ? diag_bin_short(loss[i]) : NAN;
    } else {
        int32_t *out = o.view.buf;
        for (Py_ssize_t b = 0; b < n; b += BLOCK) {
            int m = (int)(n - b < BLOCK ? n - b : BLOCK);
            diag_loss_bins(loss + b, out + b, m, mode);
        }
    }
    release(&l); release(&o);
    Py_RETURN_NONE;
}

static void diag_add_constants(PyObject *m) {
    PyModule_AddIntConstant(m, "DIAG_HIST", DIAG_HIST);
    PyModule_AddIntConstant(m, "DIAG_LOSS", DIAG_LOSS);
    PyModule_AddIntConstant(m, "DIAG_SEGMENT", DIAG_SEGMENT);
    PyModule_AddIntConstant(m, "DIAG_HIST_U", DIAG_HIST_U);
    PyModule_AddIntConstant(m, "DIAG_LOSS_U", DIAG_LOSS_U);
    PyModule_AddIntConstant(m, "DIAG_SEGMENT_U", DIAG_SEGMENT_U);
    PyModule_AddIntConstant(m, "DIAG_TOTALS", DIAG_TOTALS);
    PyModule_AddIntConstant(m, "DIAG_COUNTS", DIAG_COUNTS);
    PyModule_AddIntConstant(m, "DIAG_LOSS_BINS", DIAG_LOSS_BINS);
}

#define DIAGNOSTICS_METHODS \
    {"diagnose_check", py_diagnose_check, METH_VARARGS, "Whether a range is valid diagnostics input."}, \
    {"diagnose", py_diagnose, METH_VARARGS, "Diagnostics histograms, sums and worst-row candidates over a range."}, \
    {"diagnose_loss_bins", py_diagnose_loss_bins, METH_VARARGS, "Loss-histogram bins of float64 losses (tests)."},
