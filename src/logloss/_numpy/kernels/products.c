/* The product blocks, included by kernels.c once per pair of input dtypes it reads directly
 * (PRODUCT_LABEL / PRODUCT_ELEMENT: the C types of labels and predictions, *_TYPE their dtype
 * codes, PRODUCT_LABEL_VALUE a label as float64; PRODUCT_NAME the functions' names). Reading
 * int8 labels or float32 predictions as they compute, instead of after a widening pass, lets the
 * loads overlap the arithmetic (a widening pass alone waits on memory); every value converts
 * exactly, so each pair computes the bits the float64 one computes on the widened block. */

/* Hard labels from probabilities, a full block: loss = -log(prod q), or -1 where the product cannot
 * vouch (soft labels, q < PRODUCT_MIN, bound above tol times the loss: a near-perfect classifier).
 * q = p (exact) or fl(1 - p) (<= u); BLOCK - 1 product roundings: |error| <= 2 BLOCK u absolute
 * plus a few u relative for the log and sums. */
static double PRODUCT_NAME(hard_probability_product)(const void *labels, const void *predictions,
        double *restrict buf, int *invalid, int *soft, double tol) {
    const PRODUCT_LABEL *restrict y = labels;
    const PRODUCT_ELEMENT *restrict p = predictions;
    int64_t bad = 0, s = 0, rare = 0;
    for (int i = 0; i < BLOCK; i++) {
        double pi = p[i], yi = PRODUCT_LABEL_VALUE(y[i]);
        bad |= !((pi >= 0.0) & (pi <= 1.0) & (yi >= 0.0) & (yi <= 1.0));
        s |= (yi != 0.0) & (yi != 1.0);
        double q = yi != 0.0 ? pi : 1.0 - pi;
        rare |= !(q >= PRODUCT_MIN);
        buf[i] = q;
    }
    *invalid = bad;
    *soft = s;
    if (bad || s || rare) return -1.0;
    int64_t exponent;
    double mantissa = tree_product(buf, &exponent);
    double log_m = log(mantissa);
    double e = (double)exponent;
    double loss = -(e * LN2_HI + (e * LN2_LO + log_m));
    double bound = 2.0 * BLOCK * U + 4.0 * U * (-e * LN2 + log_m + loss);
    return bound <= tol * loss ? loss : -1.0;
}

/* Soft labels from probabilities, a full block, one log per sample: y log p + (1 - y) log(1 - p)
 * = y log(p / a) + log a + (1 - y) d, d = c / a, with 1 - p = a + c exactly; log a is shared by
 * the block as log(prod a). Error below u (16 loss + 20 P + 3 BLOCK), P = -log(prod a) (the
 * division, the log 3u |log r|, the roundings of L - d and of the linear term, the pairwise sum,
 * the product and its log, with sum |linear| <= loss + P). For float32 results (f32) log r is
 * log_short's, off by LOG_SHORT_ERROR |log r| more: sum y |log r| <= loss + P (y |log p| is part of
 * the loss and y |log a| <= -log a). -1 where that exceeds tol times the loss, or where the block
 * is not clean (p < TINY, a < PRODUCT_MIN, a label outside [0, 1], NaN), *invalid then saying
 * whether it was invalid. The checks are one condition folded per sample: a rare block pays for
 * its classification afterwards instead of every block paying for flags. */
static double PRODUCT_NAME(soft_probability_product)(const void *labels, const void *predictions,
        double *restrict buf, double *restrict linear, int *invalid, int f32, double tol) {
    const PRODUCT_LABEL *restrict y = labels;
    const PRODUCT_ELEMENT *restrict p = predictions;
    int64_t clean = 1;
#define SOFT_PRODUCT_LOOP(LOG_R)                                                            \
    for (int i = 0; i < BLOCK; i++) {                                                       \
        double pi = p[i], yi = PRODUCT_LABEL_VALUE(y[i]);                                   \
        double a = 1.0 - pi;                                                                \
        double c = -pi - (a - 1.0);                                                         \
        clean &= (pi >= TINY) & (a >= PRODUCT_MIN) & (yi >= 0.0) & (yi <= 1.0);             \
        double r = pi / a;                                                                  \
        double d = c + c * r;  /* c / a = c (1 + p / a) */                                  \
        linear[i] = -d - yi * (LOG_R - d);                                                  \
        buf[i] = a;                                                                         \
    }
    if (f32) SOFT_PRODUCT_LOOP(log_short(r))
    else SOFT_PRODUCT_LOOP(log_core(r, 0.0, 0))
#undef SOFT_PRODUCT_LOOP
    *invalid = 0;
    if (!clean) {
        int soft;
        /* buf and linear are free again: they take the block widened, where it is not float64 */
        classify(load(y, PRODUCT_LABEL_TYPE, 0, BLOCK, buf),
                 load(p, PRODUCT_ELEMENT_TYPE, 0, BLOCK, linear), NULL, BLOCK, 0, invalid, &soft);
        return -1.0;
    }
    int64_t exponent;
    double mantissa = tree_product(buf, &exponent);
    double e = (double)exponent;
    double log_a = e * LN2_HI + (e * LN2_LO + log(mantissa));
    double loss = tree_sum(linear, BLOCK) - log_a;
    double bound = U * (16.0 * loss - 20.0 * log_a + 3.0 * BLOCK)
                   + (f32 ? LOG_SHORT_ERROR * (loss - log_a) : 0.0);
    return bound <= tol * loss ? loss : -1.0;
}

/* Logits, hard or soft labels, a full block: loss = sum c |z| + log prod (1 + exp(-|z|)); the
 * factors are in (1, 2]. Per sample: exp within 1.1 ulp (e / (1 + e) <= 1/2), 1 + e rounded (u),
 * the product (u): |error| <= 4 BLOCK u; c |z| has 2u (c = 1 - y rounded, then the product), the
 * sums 9u + 32u: the relative term 6u loss covers them. The short exp of float32 results is off by
 * 2**-37 e, and e <= log(1 + e) / ln 2 for e <= 1: 2**-37 / ln 2 < 1.6e-11 of the loss more.
 * -1 where |z| > 708 or the bound exceeds tol times the loss. */
static double PRODUCT_NAME(logit_product)(const void *labels, const void *predictions,
        double *restrict buf, double *restrict linear, int *invalid, int f32, double tol) {
    const PRODUCT_LABEL *restrict y = labels;
    const PRODUCT_ELEMENT *restrict z = predictions;
    int64_t bad = 0, rare = 0;
#define LOGIT_PRODUCT_LOOP(EXP)                                                             \
    for (int i = 0; i < BLOCK; i++) {                                                       \
        double zi = z[i], yi = PRODUCT_LABEL_VALUE(y[i]);                                   \
        bad |= !((zi == zi) & (yi >= 0.0) & (yi <= 1.0));                                   \
        double a = fabs(zi);                                                                \
        rare |= !(a <= EXP_LIMIT);                                                          \
        linear[i] = (zi > 0.0 ? 1.0 - yi : yi) * a;                                         \
        buf[i] = 1.0 + EXP(-(a < EXP_LIMIT ? a : EXP_LIMIT));                               \
    }
    if (f32) LOGIT_PRODUCT_LOOP(exp_neg_short)
    else LOGIT_PRODUCT_LOOP(exp_neg)
#undef LOGIT_PRODUCT_LOOP
    *invalid = bad;
    if (bad || rare) return -1.0;
    for (int half = BLOCK / 2; half >= 1; half /= 2)
        for (int i = 0; i < half; i++) buf[i] *= buf[i + half];
    double loss = tree_sum(linear, BLOCK) + log(buf[0]);
    double bound = 4.0 * BLOCK * U + (6.0 * U + (f32 ? 1.6e-11 : 0.0)) * loss;
    return bound <= tol * loss ? loss : -1.0;
}

#undef PRODUCT_LABEL
#undef PRODUCT_LABEL_TYPE
#undef PRODUCT_LABEL_VALUE
#undef PRODUCT_ELEMENT
#undef PRODUCT_ELEMENT_TYPE
#undef PRODUCT_NAME
