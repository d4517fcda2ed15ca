/* Compiled kernels of the NumPy engine: exact sums of binary cross-entropy, per-element losses
 * for hard labels, and grouped sufficient statistics.
 *
 * Built once per CPU path (setup.py compiles this file with -DPATH_NAME=baseline|avx2|avx512 and
 * the matching -m flags; on other architectures once, as "neon" or "generic"); kernels/__init__.py
 * asks cpu.c which paths this CPU runs and imports only the best of those. The algorithms and error bounds are those of the numba kernels
 * they replace (see the comments on each function): product blocks with the exponent split,
 * branch-free log/exp on the IEEE representation, pairwise block sums. No -ffast-math: the
 * compiler may only contract a * b + c into an FMA.
 *
 * Every input is read through a block loader: labels, predictions and weights of any dtype
 * (bool, int8-int64, uint8-uint64, float16/32/64) are widened to float64 one block (BLOCK
 * samples, in L1) at a time, so the loss passes see float64 arrays only and no input-sized copy
 * is ever made. float64 blocks are read in place.
 *
 * The kernels only compute. Anything they cannot vouch for (invalid input, an infinite loss
 * where a sum is asked for, soft labels where "none" is asked for) returns REFERENCE, and the
 * caller runs the NumPy reference path, which owns every error message and warning. Each entry
 * works on a range [lo, hi) of the flattened inputs with the GIL released; the Python side
 * splits the work into ranges and calls it from its thread pool (no threads are created here).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifndef PATH_NAME
#define PATH_NAME native
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define STR_(a) #a
#define STR(a) STR_(a)

#define BLOCK 512
#define CHUNK 16384
#define OK 0
#define REFERENCE 1

/* dtype codes, shared with kernels.py */
enum { T_BOOL, T_I8, T_I16, T_I32, T_I64, T_U8, T_U16, T_U32, T_U64, T_F16, T_F32, T_F64, T_COUNT };
static const int ITEMSIZE[T_COUNT] = {1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8};

static const double TINY = 2.2250738585072014e-308;   /* smallest normal float64 */
static const double LN2_HI = 6.93147180369123816490e-01;  /* 32 bits: k LN2_HI exact, |k| < 2**20 */
static const double LN2_LO = 1.90821492927058770002e-10;
static const double INV_LN2 = 1.44269504088896338700e00;
static const double SHIFTER = 6755399441055744.0;      /* 1.5 * 2**52 */
#define SQRT_HALF_BITS 0x3FE6A09E667F3BCDULL
#define ONE_BITS 0x3FF0000000000000ULL
#define MANTISSA_MASK 0x000FFFFFFFFFFFFFULL
static const double EXP_LIMIT = 708.0;      /* exp(-708) is still normal */
static const double SOFTPLUS_LOW = -690.0;  /* below: exp(s) scaled by 2**k loses low bits */
static const double SOFTPLUS_HIGH = 34.0;   /* above: exp(-s) < ulp(s) / 2 */
static const double U = 1.1102230246251565e-16;  /* 2**-53 */
static const double PRODUCT_MIN = 8.673617379884035e-19;  /* 2**-60 */
static const double LN2 = 0.6931471805599453;
static const double SQRT2_MINUS_1 = 0.41421356237309503;
/* Largest accepted error bound of a product block, relative to its loss. float64 results: 1e-14.
 * float32 results (the contract is 1 float32 ulp of the exact value): 2**-30, so the whole sum is
 * within 2**-30 + 45u < 2**-25 relative, half a float32 ulp, before its one rounding to float32. */
static const double TOLERANCE64 = 1e-14;
static const double TOLERANCE32 = 9.313225746154785e-10;

static inline uint64_t bits(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
static inline double from_bits(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA) || defined(__aarch64__)
static inline double fma_err(double a, double b, double p) { return __builtin_fma(a, b, -p); }
#else
/* a b - p exactly for p = fl(a b), without FMA hardware: Dekker's product (Veltkamp split). */
static inline double fma_err(double a, double b, double p) {
    const double split = 134217729.0;  /* 2**27 + 1 */
    double ta = split * a, tb = split * b;
    double ah = ta - (ta - a), al = a - ah, bh = tb - (tb - b), bl = b - bh;
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}
#endif

/* ------------------------------------------------------------------ log, exp */

/* fdlibm's log1p(f) = f - (hfsq - s (hfsq + R(s))), s = f / (2 + f), for sqrt(1/2) - 1 <= f <
 * sqrt(2) - 1; R its degree-14 polynomial (error < 2**-58.45). */
static inline void log1p_parts(double f, double *hfsq, double *tail) {
    double h = 0.5 * f * f;
    double s = f / (2.0 + f);
    double s2 = s * s, s4 = s2 * s2;
    double t1 = s4 * (3.999999999940941908e-01 + s4 * (2.222219843214978396e-01 + s4 * 1.531383769920937332e-01));
    double t2 = s2 * (6.666666666666735130e-01 + s4 * (2.857142874366239149e-01
                + s4 * (1.818357216161805012e-01 + s4 * 1.479819860511658591e-01)));
    *hfsq = h;
    *tail = s * (h + (t2 + t1));
}

/* log(a + c) for normal a > 0, a < 2**1022, |c| <= ulp(a); branch-free. series (a constant):
 * 2, c / a to full accuracy (within 1 ulp: 0.85 measured); 1, c / a taken as c 2**-k (2**-53
 * relative more, for sums only); 0, c is 0. The exponent is taken with a logical shift of
 * bits(a) + 1 - sqrt(1/2) (biased, never negative), which AVX2 has, unlike a 64-bit arithmetic one. */
static inline double log_core(double a, double c, int series) {
    uint64_t ix = bits(a);
    uint64_t kb = (ix + ONE_BITS - SQRT_HALF_BITS) >> 52;  /* k + 1023, a = 2**k z, z in [sqrt(1/2), sqrt 2) */
    double z = from_bits(ix - ((kb - 1023) << 52));
    double dk = from_bits(bits(SHIFTER) + kb) - (SHIFTER + 1023.0);  /* float(k), no int64 convert */
    double f = z - 1.0;  /* exact (Sterbenz) */
    double hfsq, tail;
    log1p_parts(f, &hfsq, &tail);
    double small = tail + dk * LN2_LO;
    if (series == 2) {
        /* c / a = c 2**-k / (1 + f), a series in f (|f| < 0.42): f**7 < 0.3% of a term < ulp / 2 */
        double inverse = 1.0 + f * (-1.0 + f * (1.0 + f * (-1.0 + f * (1.0 + f * (-1.0 + f)))));
        small += c * from_bits((2046 - kb) << 52) * inverse;
    } else if (series == 1) {
        small += c * from_bits((2046 - kb) << 52);
    }
    return dk * LN2_HI - ((hfsq - small) - f);
}
static inline double log_plus(double a, double c) { return log_core(a, c, 2); }
static inline double log_term(double a, double c) { return log_core(a, c, 1); }

/* log(a) for normal a > 0 within 2**-42 relative, for float32 results only: a = 2**k (1 + f) as in
 * log_core, log(1 + f) = 2 s + s**3 Q(s**2), s = f / (2 + f), Q of degree 4 fitted on s**2 <=
 * 0.0295 (Chebyshev, mpmath: 2**-43.08 of the log); the roundings add a few 2**-53, and k ln 2
 * with log(1 + f), |log(1 + f)| <= ln(2) / 2, cancels at most to half. */
static inline double log_short(double a) {
    uint64_t ix = bits(a);
    uint64_t kb = (ix + ONE_BITS - SQRT_HALF_BITS) >> 52;
    double z = from_bits(ix - ((kb - 1023) << 52));
    double dk = from_bits(bits(SHIFTER) + kb) - (SHIFTER + 1023.0);
    double f = z - 1.0;
    double s = f / (2.0 + f);
    double t = s * s;
    double q = 0.66666666667382772127 + t * (0.39999998786883282516 + t * (0.28571756668146314
               + t * (0.22191265599171966073 + t * 0.19365278421757222174)));
    return dk * LN2 + (2.0 * s + s * t * q);
}
static const double LOG_SHORT_ERROR = 2.2737367544323206e-13;  /* 2**-42 */

/* exp(x) for -708 <= x <= 0 within 1.1 ulp: x = k ln2 + r, |r| <= ln2 / 2, exp(r) = 1 + r + r**2
 * q(r), q the degree-9 near-minimax fit (1.8e-17 relative); 2**k from its exponent bits. */
static inline double exp_neg(double x) {
    double kd = x * INV_LN2 + SHIFTER;
    int64_t ki = (int64_t)(bits(kd) - bits(SHIFTER));
    kd -= SHIFTER;
    double r = (x - kd * LN2_HI) - kd * LN2_LO;
    double q = 2.5100375832561234e-08;
    q = 2.7620075879983367e-07 + r * q;
    q = 2.7557268480310024e-06 + r * q;
    q = 2.4801521322368692e-05 + r * q;
    q = 1.9841269863040545e-04 + r * q;
    q = 1.3888888917196719e-03 + r * q;
    q = 8.333333333330065e-03 + r * q;
    q = 4.1666666666624164e-02 + r * q;
    q = 0.16666666666666669 + r * q;
    q = 0.5000000000000001 + r * q;
    q = r + (r * r) * q;
    return (1.0 + q) * from_bits((uint64_t)(ki + 1023) << 52);
}

/* exp_neg with a degree-6 q (minimax, 2.7e-11): within 2**-37 relative, for float32 results only
 * (their ulp is >= 2**-24 relative). */
static inline double exp_neg_short(double x) {
    double kd = x * INV_LN2 + SHIFTER;
    int64_t ki = (int64_t)(bits(kd) - bits(SHIFTER));
    kd -= SHIFTER;
    double r = (x - kd * LN2_HI) - kd * LN2_LO;
    double q = 2.4859578222625295e-05;
    q = 0.0001989927395864936 + r * q;
    q = 0.001388885404961482 + r * q;
    q = 0.008333298483754886 + r * q;
    q = 0.041666666718980845 + r * q;
    q = 0.16666666718997508 + r * q;
    q = 0.5 + r * q;
    q = r + (r * r) * q;
    return (1.0 + q) * from_bits((uint64_t)(ki + 1023) << 52);
}

/* log(1 + e) for 0 <= e <= 1 within 0.85 ulp, no bit tricks: f = e up to sqrt(2) - 1, else
 * 1 + e = 2 (1 + f), f = (e - 1) / 2, its rounding c kept (e - 1 = d + 2c exactly). */
static inline double log1p_unit(double e) {
    int big = e > SQRT2_MINUS_1;
    double d = e - 1.0;
    double f = big ? d * 0.5 : e;
    double c = big ? (e - (d + 1.0)) * 0.5 : 0.0;
    double k = big ? 1.0 : 0.0;
    double hfsq, tail;
    log1p_parts(f, &hfsq, &tail);
    double small = tail + (k * LN2_LO + c * (1.0 - f + f * f));
    return k * LN2_HI - ((hfsq - small) - f);
}

/* (scale, hi, lo), exp(x) = scale (hi + lo) within ~2**-60, |lo| <= ulp(hi), for SOFTPLUS_LOW <=
 * x < 710: 1 + r + (r**2 / 2 + r**3 q) summed with its rounding errors kept (Fast2Sum twice, r**2
 * / 2 split exactly), the reduced argument r + r_tail exact (TwoSum: |r_lo| may exceed |r_hi|). */
static inline void exp_split(double x, double *scale, double *hi_out, double *lo_out) {
    double kd = x * INV_LN2 + SHIFTER;
    int64_t ki = (int64_t)(bits(kd) - bits(SHIFTER));
    kd -= SHIFTER;
    double r_hi = x - kd * LN2_HI;
    double r_lo = -kd * LN2_LO;
    double r = r_hi + r_lo;
    double v = r - r_hi;
    double r_tail = (r_hi - (r - v)) + (r_lo - v);
    double q = 7.647163731819816e-13;
    q = 1.1470745597729725e-11 + r * q;
    q = 1.6059043836821613e-10 + r * q;
    q = 2.08767569878681e-09 + r * q;
    q = 2.505210838544172e-08 + r * q;
    q = 2.755731922398589e-07 + r * q;
    q = 2.7557319223985893e-06 + r * q;
    q = 2.48015873015873e-05 + r * q;
    q = 1.984126984126984e-04 + r * q;
    q = 1.388888888888889e-03 + r * q;
    q = 8.333333333333333e-03 + r * q;
    q = 4.1666666666666664e-02 + r * q;
    q = 0.16666666666666666 + r * q;
    double half = 0.5 * r;
    double square = half * r;
    double square_lo = fma_err(half, r, square);
    double cube = (r * r) * (r * q);
    double t = square + cube;
    double t_lo = cube - (t - square);
    double one = 1.0 + r;
    double one_lo = r - (one - 1.0);
    double hi = one + t;
    double lo = (one_lo + (t - (hi - one))) + ((t_lo + square_lo) + r_tail * hi);
    double top = hi + lo;
    *scale = from_bits((uint64_t)(ki + 1023) << 52);
    *hi_out = top;
    *lo_out = lo - (top - hi);
}

/* log(1 + exp(s)) within 1 ulp for SOFTPLUS_LOW <= s < SOFTPLUS_HIGH: 1 + exp(s) formed as an
 * exact a + c, so log_plus's own rounding is all that counts; below exp(s) = 2**-20 a three-term
 * series (2**-62) replaces the log. */
static inline double softplus_exact(double s) {
    double scale, hi, lo;
    exp_split(s, &scale, &hi, &lo);
    double e = hi * scale, e_lo = lo * scale;
    double big = e > 1.0 ? e : 1.0, small = e > 1.0 ? 1.0 : e;
    double a = big + small;
    double logged = log_plus(a, (small - (a - big)) + e_lo);
    double series = e + (e_lo - (e * e) * (0.5 - e * (1.0 / 3.0)));
    return e < 9.5367431640625e-07 ? series : logged;
}

/* softplus for float32 results: the float64 formula with the short exp, 2**-37 relative, 2**-14
 * of a float32 ulp before the rounding. */
static inline double softplus_short(double s) {
    return (s > 0.0 ? s : 0.0) + log1p_unit(exp_neg_short(-fabs(s)));
}

/* ------------------------------------------------------------------ block sums and products */

/* Sum of buf[:m] by pairwise halving (contiguous passes vectorize; 9 roundings per term). */
static inline double tree_sum(double *restrict buf, int m) {
    for (int i = m; i < BLOCK; i++) buf[i] = 0.0;
    for (int half = BLOCK / 2; half >= 1; half /= 2)
        for (int i = 0; i < half; i++) buf[i] += buf[i + half];
    return buf[0];
}

/* prod(buf[:BLOCK]) = 2**E M: 4 halving passes (32 products of 16 factors in [2**-960, 2**960],
 * every factor in [PRODUCT_MIN, 2**60]), exponents split off exactly, 31 more mantissa products. */
static inline double tree_product(double *restrict buf, int64_t *exponent) {
    int half = BLOCK / 2;
    for (; half >= BLOCK / 16; half /= 2)
        for (int i = 0; i < half; i++) buf[i] *= buf[i + half];
    int64_t e = 0;
    for (int i = 0; i < 2 * half; i++) {
        uint64_t b = bits(buf[i]);
        e += (int64_t)(b >> 52) - 1023;
        buf[i] = from_bits((b & MANTISSA_MASK) | ONE_BITS);
    }
    for (; half >= 1; half /= 2)
        for (int i = 0; i < half; i++) buf[i] *= buf[i + half];
    *exponent = e;
    return buf[0];
}

/* ------------------------------------------------------------------ block loaders */

static inline double half_to_double(uint16_t h) {
    uint64_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
    double v;
    if (e == 0) v = (double)m * 5.9604644775390625e-08;  /* m 2**-24 */
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = (double)(m | 0x400) * from_bits((e - 25 + 1023) << 52);
    return (h & 0x8000) ? -v : v;
}

/* An int64 label as float64, clamped to [-1, 2] first: the checks see the same verdict, and small
 * ints convert 2x faster than int64 (measured). */
static inline double int64_label(int64_t v) { return (double)(int32_t)(v < -1 ? -1 : (v > 2 ? 2 : v)); }

#define WIDEN(T) { const T *s = (const T *)base + b; for (int i = 0; i < m; i++) buf[i] = (double)s[i]; } break;

/* Samples [b, b + m) of an array of dtype code t as float64: in place for float64, else in buf. */
static inline const double *load(const void *base, int t, Py_ssize_t b, int m, double *restrict buf) {
    switch (t) {
    case T_F64: return (const double *)base + b;
    case T_BOOL: case T_U8: WIDEN(uint8_t)
    case T_I8: WIDEN(int8_t)
    case T_I16: WIDEN(int16_t)
    case T_I32: WIDEN(int32_t)
    case T_I64: { const int64_t *s = (const int64_t *)base + b;
                  for (int i = 0; i < m; i++) buf[i] = int64_label(s[i]); } break;
    case T_U16: WIDEN(uint16_t)
    case T_U32: WIDEN(uint32_t)
    case T_U64: { const uint64_t *s = (const uint64_t *)base + b;
                  for (int i = 0; i < m; i++) buf[i] = (double)(int32_t)(s[i] > 2 ? 2 : s[i]); } break;
    case T_F32: WIDEN(float)
    case T_F16: { const uint16_t *s = (const uint16_t *)base + b;
                  for (int i = 0; i < m; i++) buf[i] = half_to_double(s[i]); } break;
    }
    return buf;
}

/* ------------------------------------------------------------------ per-sample loss passes */
/* Each folds every check into one "clean" condition (labels in range, and 0 or 1 where the
 * formula needs it; the logs' arguments normal; |z| <= 708; weights finite and >= 0): one
 * condition is cheaper than separate flags. A block that is not clean is classified afterwards. */

static inline int64_t weight_ok(double w) { return (w >= 0.0) & (w < INFINITY); }

/* out *= w; whether every weight is finite and >= 0. A pass of its own, so that the loss loops
 * have no branch on whether there are weights (GCC does not vectorize them with it). */
static int64_t apply_weights(const double *restrict w, int m, double *restrict out) {
    int64_t ok = 1;
    for (int i = 0; i < m; i++) { ok &= weight_ok(w[i]); out[i] *= w[i]; }
    return ok;
}

/* out = (w *) -log q, q = p (y = 1) or 1 - p = a + c exactly (y = 0): within 1 ulp. */
static int hard_losses(const double *restrict y, const double *restrict p, const double *restrict w,
                       int m, double *restrict out) {
    int64_t clean = 1;
    for (int i = 0; i < m; i++) {
        double pi = p[i], yi = y[i];
        double a = 1.0 - pi;
        double c = -pi - (a - 1.0);
        int64_t one = yi != 0.0;
        a = one ? pi : a;
        c = one ? 0.0 : c;
        clean &= ((yi == 0.0) | (yi == 1.0)) & (pi >= 0.0) & (pi <= 1.0) & (a >= TINY);
        double loss = -log_plus(a, c);
        out[i] = loss;
    }
    return w ? clean & apply_weights(w, m, out) : clean;
}

/* out = (w *) -(y log p + (1 - y) log(1 - p)), log_term for the second log (sums only). */
static int soft_losses(const double *restrict y, const double *restrict p, const double *restrict w,
                       int m, double *restrict out) {
    int64_t clean = 1;
    for (int i = 0; i < m; i++) {
        double pi = p[i], yi = y[i];
        double a = 1.0 - pi;
        double c = -pi - (a - 1.0);
        clean &= (yi >= 0.0) & (yi <= 1.0) & (pi >= TINY) & (a >= TINY);
        double loss = -(yi * log_core(pi, 0.0, 0) + (1.0 - yi) * log_term(a, c));
        out[i] = loss;
    }
    return w ? clean & apply_weights(w, m, out) : clean;
}

/* out = (w *) log1p(exp(-|z|)) + c |z|, c = y (z <= 0) or 1 - y (z > 0): non-negative terms. */
static int logit_losses(const double *restrict y, const double *restrict z, const double *restrict w,
                        int m, double *restrict out, int f32) {
    int64_t clean = 1;
    for (int i = 0; i < m; i++) {
        double zi = z[i], yi = y[i];
        double a = fabs(zi);
        clean &= (yi >= 0.0) & (yi <= 1.0) & (a <= EXP_LIMIT);
        double e = f32 ? exp_neg_short(-(a < EXP_LIMIT ? a : EXP_LIMIT)) : exp_neg(-(a < EXP_LIMIT ? a : EXP_LIMIT));
        double cz = (zi > 0.0 ? 1.0 - yi : yi) * a;
        double loss = log1p_unit(e) + cz;
        out[i] = loss;
    }
    return w ? clean & apply_weights(w, m, out) : clean;
}

/* (invalid, soft) of a block that was not clean. */
static void classify(const double *y, const double *x, const double *w, int m, int logits,
                     int *invalid, int *soft) {
    int bad = 0, s = 0;
    for (int i = 0; i < m; i++) {
        double yi = y[i], xi = x[i];
        if (logits) bad |= !(xi == xi && yi >= 0.0 && yi <= 1.0);
        else bad |= !(xi >= 0.0 && xi <= 1.0 && yi >= 0.0 && yi <= 1.0);
        s |= yi != 0.0 && yi != 1.0;
        if (w) bad |= !weight_ok(w[i]);
    }
    *invalid = bad;
    *soft = s;
}

/* The reference formulas in libm, 0 log 0 = 0. */
static inline double scalar_probability(double y, double p) {
    double loss = 0.0;
    if (y != 0.0) loss -= y * log(p);
    if (1.0 - y != 0.0) loss -= (1.0 - y) * log1p(-p);
    return loss;
}
static inline double softplus_libm(double z) { return (z > 0.0 ? z : 0.0) + log1p(exp(-fabs(z))); }
static inline double scalar_logit(double y, double z) {
    double loss = 0.0;
    if (y != 0.0) loss += y * softplus_libm(-z);
    if (1.0 - y != 0.0) loss += (1.0 - y) * softplus_libm(z);
    return loss;
}

/* The block by the libm formulas (valid input assumed); a zero weight drops its sample even where
 * the loss is infinite. Returns how many losses are infinite. */
static int rare_block(const double *y, const double *x, const double *w, int m, int logits, double *out) {
    int infinite = 0;
    for (int i = 0; i < m; i++) {
        double loss = logits ? scalar_logit(y[i], x[i]) : scalar_probability(y[i], x[i]);
        if (w) loss = w[i] == 0.0 ? 0.0 : loss * w[i];
        infinite += !(loss < INFINITY);
        out[i] = loss;
    }
    return infinite;
}

/* ------------------------------------------------------------------ product blocks */

/* The product blocks for each pair of dtypes they read in place: float64, float32 or int64 labels
 * with float64 or float32 predictions (float64 both: names as written; else _<label>_<prediction>).
 * Other dtypes are widened to float64 first: GCC vectorizes none of these loops with int8 labels,
 * and an int8 label block is an eighth of a float64 prediction block. */
#define PRODUCT_LABEL double
#define PRODUCT_LABEL_TYPE T_F64
#define PRODUCT_LABEL_VALUE(v) (double)(v)
#define PRODUCT_ELEMENT double
#define PRODUCT_ELEMENT_TYPE T_F64
#define PRODUCT_NAME(name) name
#include "products.c"
#define PRODUCT_LABEL double
#define PRODUCT_LABEL_TYPE T_F64
#define PRODUCT_LABEL_VALUE(v) (double)(v)
#define PRODUCT_ELEMENT float
#define PRODUCT_ELEMENT_TYPE T_F32
#define PRODUCT_NAME(name) name##_f64_f32
#include "products.c"
#define PRODUCT_LABEL float
#define PRODUCT_LABEL_TYPE T_F32
#define PRODUCT_LABEL_VALUE(v) (double)(v)
#define PRODUCT_ELEMENT double
#define PRODUCT_ELEMENT_TYPE T_F64
#define PRODUCT_NAME(name) name##_f32_f64
#include "products.c"
#define PRODUCT_LABEL float
#define PRODUCT_LABEL_TYPE T_F32
#define PRODUCT_LABEL_VALUE(v) (double)(v)
#define PRODUCT_ELEMENT float
#define PRODUCT_ELEMENT_TYPE T_F32
#define PRODUCT_NAME(name) name##_f32_f32
#include "products.c"
#define PRODUCT_LABEL int64_t
#define PRODUCT_LABEL_TYPE T_I64
#define PRODUCT_LABEL_VALUE(v) int64_label(v)
#define PRODUCT_ELEMENT double
#define PRODUCT_ELEMENT_TYPE T_F64
#define PRODUCT_NAME(name) name##_i64_f64
#include "products.c"
#define PRODUCT_LABEL int64_t
#define PRODUCT_LABEL_TYPE T_I64
#define PRODUCT_LABEL_VALUE(v) int64_label(v)
#define PRODUCT_ELEMENT float
#define PRODUCT_ELEMENT_TYPE T_F32
#define PRODUCT_NAME(name) name##_i64_f32
#include "products.c"

typedef struct {
    double (*hard)(const void *, const void *, double *, int *, int *, double);
    double (*soft)(const void *, const void *, double *, double *, int *, int, double);
    double (*logit)(const void *, const void *, double *, double *, int *, int, double);
} Products;

/* The dtype a product block reads labels (predictions: 0) of dtype t in: t itself, or float64. */
static inline int product_read_type(int t, int labels) {
    return t == T_F64 || t == T_F32 || (labels && t == T_I64) ? t : T_F64;
}

/* The product blocks that read labels of dtype yt and predictions of dtype xt in place. */
#define PRODUCTS_OF(s) {hard_probability_product##s, soft_probability_product##s, logit_product##s}
static const Products *products_for(int yt, int xt) {
    static const Products p_f64_f64 = PRODUCTS_OF();
    static const Products p_f64_f32 = PRODUCTS_OF(_f64_f32);
    static const Products p_f32_f64 = PRODUCTS_OF(_f32_f64);
    static const Products p_f32_f32 = PRODUCTS_OF(_f32_f32);
    static const Products p_i64_f64 = PRODUCTS_OF(_i64_f64);
    static const Products p_i64_f32 = PRODUCTS_OF(_i64_f32);
    if (yt == T_F64 && xt == T_F64) return &p_f64_f64;
    if (yt == T_F64 && xt == T_F32) return &p_f64_f32;
    if (yt == T_F32 && xt == T_F64) return &p_f32_f64;
    if (yt == T_F32 && xt == T_F32) return &p_f32_f32;
    if (yt == T_I64 && xt == T_F64) return &p_i64_f64;
    if (yt == T_I64 && xt == T_F32) return &p_i64_f32;
    return NULL;
}

/* ------------------------------------------------------------------ buffers */

typedef struct {
    double y[BLOCK], x[BLOCK], w[BLOCK], buf[BLOCK], buf2[BLOCK], y2[BLOCK], x2[BLOCK];
    void *raw;
} Buffers;

/* Block buffers aligned to 64 bytes (a cache line, one AVX-512 vector): PyMem_RawMalloc's 16-byte
 * alignment made full vector loads straddle lines. */
static Buffers *new_buffers(void) {
    void *raw = PyMem_RawMalloc(sizeof(Buffers) + 64);
    if (!raw) return NULL;
    Buffers *b = (Buffers *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    b->raw = raw;
    return b;
}
static void free_buffers(Buffers *b) { PyMem_RawFree(b->raw); }

/* sum += v with the error kept in *err (Neumaier). */
static inline void add2(double *sum, double *err, double v) {
    double s = *sum + v;
    *err += fabs(*sum) >= fabs(v) ? (*sum - s) + v : (v - s) + *sum;
    *sum = s;
}

typedef struct {
    const void *y; int yt;
    const void *x; int xt;
    const void *w; int wt;  /* w NULL: unweighted */
    int logits, f32;
} Inputs;

/* Sums over [lo, hi): loss, weight, and (stats) labels and predictions, each weighted; the
 * prediction of a logit is its sigmoid. Blocks as in the numba kernels: a product first where
 * unweighted and full (the soft-label one once a block had soft labels), else a loss pass, then
 * classification of a block that was not clean, then libm for values only it handles. */
static int sums_range(const Inputs *in, Py_ssize_t lo, Py_ssize_t hi, int stats, double out[8]) {
    Buffers *B = new_buffers();
    if (!B) return -1;
    double tol = in->f32 ? TOLERANCE32 : TOLERANCE64;
    int yr = product_read_type(in->yt, 1), xr = product_read_type(in->xt, 0);
    const Products *reader = products_for(yr, xr);
    double total = 0.0, total_err = 0.0, weight = 0.0, weight_err = 0.0;
    double labels = 0.0, labels_err = 0.0, preds = 0.0, preds_err = 0.0;
    int status = OK;
    int soft = -1;
    for (Py_ssize_t c = lo; c < hi && status == OK; c += CHUNK) {
        Py_ssize_t chunk_hi = c + CHUNK < hi ? c + CHUNK : hi;
        double chunk = 0.0, chunk_w = 0.0, chunk_l = 0.0, chunk_p = 0.0;
        for (Py_ssize_t b = c; b < chunk_hi; b += BLOCK) {
            int m = (int)(chunk_hi - b < BLOCK ? chunk_hi - b : BLOCK);
            /* a full unweighted block is read in place by the products where they read its dtypes */
            const double *y = NULL, *x = NULL, *w = NULL;  /* float64 blocks, where a pass reads them */
            if (soft < 0) {  /* a guess from the first label: picks the first path */
                double first = load(in->y, in->yt, b, 1, B->y2)[0];
                soft = !(first == 0.0 || first == 1.0);
            }
            int invalid = 0, s = 0, clean = 0;
            if (!in->w && m == BLOCK) {
                const void *yb = (const char *)in->y + b * ITEMSIZE[in->yt];
                const void *xb = (const char *)in->x + b * ITEMSIZE[in->xt];
                if (in->yt != yr) yb = y = load(in->y, in->yt, b, m, B->y);
                if (in->xt != xr) xb = x = load(in->x, in->xt, b, m, B->x);
                double loss;
                if (in->logits) loss = reader->logit(yb, xb, B->buf, B->buf2, &invalid, in->f32, tol);
                else if (soft) loss = reader->soft(yb, xb, B->buf, B->buf2, &invalid, in->f32, tol);
                else {
                    loss = reader->hard(yb, xb, B->buf, &invalid, &s, tol);
                    if (s) soft = 1;
                }
                if (invalid) { status = REFERENCE; break; }
                if (loss >= 0.0) {
                    chunk += loss;
                    if (!stats) continue;
                    if (!y) y = load(in->y, in->yt, b, m, B->y);
                    if (!x) x = load(in->x, in->xt, b, m, B->x);
                    goto extra;
                }
            }
            if (!y) y = load(in->y, in->yt, b, m, B->y);
            if (!x) x = load(in->x, in->xt, b, m, B->x);
            if (in->w) w = load(in->w, in->wt, b, m, B->w);
            if (in->logits) clean = logit_losses(y, x, w, m, B->buf, in->f32);
            else {
                if (!soft) {
                    clean = hard_losses(y, x, w, m, B->buf);
                    if (!clean) {
                        classify(y, x, w, m, 0, &invalid, &s);
                        if (invalid) { status = REFERENCE; break; }
                        soft = s;
                    }
                }
                if (soft) clean = soft_losses(y, x, w, m, B->buf);
            }
            double block_sum;
            if (clean) block_sum = tree_sum(B->buf, m);
            else {
                classify(y, x, w, m, in->logits, &invalid, &s);
                if (invalid) { status = REFERENCE; break; }
                block_sum = NAN;
            }
            if (!(block_sum < INFINITY)) {
                if (rare_block(y, x, w, m, in->logits, B->buf)) { status = REFERENCE; break; }
                block_sum = tree_sum(B->buf, m);
            }
            chunk += block_sum;
        extra:
            if (w) {
                for (int i = 0; i < m; i++) B->buf[i] = w[i];
                chunk_w += tree_sum(B->buf, m);
            }
            if (stats) {
                for (int i = 0; i < m; i++) B->buf[i] = w ? y[i] * w[i] : y[i];
                chunk_l += tree_sum(B->buf, m);
                if (in->logits) {
                    for (int i = 0; i < m; i++) {
                        double z = x[i];
                        double e = exp_neg(-(fabs(z) < EXP_LIMIT ? fabs(z) : EXP_LIMIT));
                        double sig = (z >= 0.0 ? 1.0 : e) / (1.0 + e);
                        if (fabs(z) > EXP_LIMIT) sig = z > 0.0 ? 1.0 : 0.0;
                        B->buf[i] = w ? (w[i] == 0.0 ? 0.0 : sig * w[i]) : sig;
                    }
                } else {
                    for (int i = 0; i < m; i++) B->buf[i] = w ? x[i] * w[i] : x[i];
                }
                chunk_p += tree_sum(B->buf, m);
            }
        }
        add2(&total, &total_err, chunk);
        add2(&weight, &weight_err, in->w ? chunk_w : (double)(chunk_hi - c));
        add2(&labels, &labels_err, chunk_l);
        add2(&preds, &preds_err, chunk_p);
    }
    free_buffers(B);
    out[0] = total; out[1] = total_err; out[2] = weight; out[3] = weight_err;
    out[4] = labels; out[5] = labels_err; out[6] = preds; out[7] = preds_err;
    return status;
}

/* ------------------------------------------------------------------ reduction="none", hard labels */

static void store(void *out, int ot, Py_ssize_t b, const double *src, int m) {
    if (ot == T_F64) memcpy((double *)out + b, src, (size_t)m * sizeof(double));
    else { float *o = (float *)out + b; for (int i = 0; i < m; i++) o[i] = (float)src[i]; }
}

/* -log q per sample, within 1 ulp (float32 results: the float64 value rounded once more, 0.5 +
 * 2**-29 ulp). REFERENCE for soft labels, invalid input or an infinite loss. */
static int probability_losses_range(const Inputs *in, void *out, int ot, Py_ssize_t lo, Py_ssize_t hi) {
    Buffers *B = new_buffers();
    if (!B) return -1;
    int status = OK;
    for (Py_ssize_t b = lo; b < hi; b += BLOCK) {
        int m = (int)(hi - b < BLOCK ? hi - b : BLOCK);
        const double *y = load(in->y, in->yt, b, m, B->y);
        const double *x = load(in->x, in->xt, b, m, B->x);
        if (!hard_losses(y, x, NULL, m, B->buf)) {
            int invalid, soft;
            classify(y, x, NULL, m, 0, &invalid, &soft);
            if (invalid || soft || rare_block(y, x, NULL, m, 0, B->buf)) { status = REFERENCE; break; }
        }
        store(out, ot, b, B->buf, m);
    }
    free_buffers(B);
    return status;
}

/* softplus(s), s = z (y = 0) or -z (y = 1), within 1 ulp: float64 softplus_exact (one log of an
 * exact 1 + exp(s)); float32 softplus_short. Branch-free: s clamped into the formulas' domain,
 * the result replaced by s above SOFTPLUS_HIGH; below SOFTPLUS_LOW libm's exp(s) (subnormal
 * results included). REFERENCE for soft labels, NaN, labels outside [0, 1] or s = +inf. */
static int logit_losses_range(const Inputs *in, void *out, int ot, Py_ssize_t lo, Py_ssize_t hi) {
    Buffers *B = new_buffers();
    if (!B) return -1;
    int status = OK;
    for (Py_ssize_t b = lo; b < hi; b += BLOCK) {
        int m = (int)(hi - b < BLOCK ? hi - b : BLOCK);
        const double *y = load(in->y, in->yt, b, m, B->y);
        const double *z = load(in->x, in->xt, b, m, B->x);
        double *s = B->buf2, *loss = B->buf;
        int64_t clean = 1;
        for (int i = 0; i < m; i++) {
            clean &= (y[i] == 0.0) | (y[i] == 1.0);
            s[i] = y[i] != 0.0 ? -z[i] : z[i];
        }
        if (ot == T_F32) {
            for (int i = 0; i < m; i++) {
                double si = s[i];
                clean &= (si >= SOFTPLUS_LOW) & (si < INFINITY);
                double c = si < SOFTPLUS_LOW ? SOFTPLUS_LOW : (si > SOFTPLUS_HIGH ? SOFTPLUS_HIGH : si);
                double v = softplus_short(c);
                loss[i] = si >= SOFTPLUS_HIGH ? si : v;
            }
        } else {
            for (int i = 0; i < m; i++) {
                double si = s[i];
                clean &= (si >= SOFTPLUS_LOW) & (si < INFINITY);
                double c = si < SOFTPLUS_LOW ? SOFTPLUS_LOW : (si > SOFTPLUS_HIGH ? SOFTPLUS_HIGH : si);
                double v = softplus_exact(c);
                loss[i] = si >= SOFTPLUS_HIGH ? si : v;
            }
        }
        if (!clean) {
            int invalid, soft;
            classify(y, z, NULL, m, 1, &invalid, &soft);
            if (invalid || soft) { status = REFERENCE; break; }
            for (int i = 0; i < m; i++) {
                if (s[i] == INFINITY) { status = REFERENCE; break; }
                if (s[i] < SOFTPLUS_LOW) loss[i] = exp(s[i]);
            }
            if (status != OK) break;
        }
        store(out, ot, b, loss, m);
    }
    free_buffers(B);
    return status;
}

/* ------------------------------------------------------------------ grouped statistics */

#define GROUP_FIELDS 11  /* hi of the loss, weight, weighted label and weighted prediction sums;
                          * their lo (compensations) in the same order; count; infinite;
                          * unweighted label sum */
static const double ONES[BLOCK] = {[0 ... BLOCK - 1] = 1.0};

/* acc[0:4] += (a, b, c, d) with the exact rounding errors added to acc[4:8] (TwoSum, lane by lane:
 * the same errors as add2's branch). One 4-wide vector where AVX has it; two halves of 2 without
 * (SSE2 splits a 4-wide GCC vector into slower code). */
#ifdef __AVX__
typedef double group_vector __attribute__((vector_size(32)));
#define GROUP_LANES 4
#else
typedef double group_vector __attribute__((vector_size(16)));
#define GROUP_LANES 2
#endif
static inline void group_add(double *acc, double a, double b, double c, double d) {
    const double add[4] = {a, b, c, d};
    for (int k = 0; k < 4; k += GROUP_LANES) {
        group_vector v, h, l;
        memcpy(&v, add + k, sizeof v);
        memcpy(&h, acc + k, sizeof h);
        memcpy(&l, acc + 4 + k, sizeof l);
        group_vector sum = h + v, back = sum - h;
        l += (h - (sum - back)) + (v - back);
        memcpy(acc + k, &sum, sizeof sum);
        memcpy(acc + 4 + k, &l, sizeof l);
    }
}

/* Whether a sample's unweighted loss is +inf: its true class given probability exactly 0
 * (a logit of -inf or +inf against its label); softplus of any finite logit is finite. */
static inline int group_loss_infinite(double y, double x, int logits) {
    if (logits) return (x == -INFINITY && y != 0.0) || (x == INFINITY && y != 1.0);
    return (x == 0.0 && y != 0.0) || (x == 1.0 && y != 1.0);
}

static inline int64_t code_at(const void *codes, int ct, Py_ssize_t i) {
    switch (ct) {
    case T_I8: return ((const int8_t *)codes)[i];
    case T_I16: return ((const int16_t *)codes)[i];
    case T_I32: return ((const int32_t *)codes)[i];
    case T_U8: return ((const uint8_t *)codes)[i];
    case T_U16: return ((const uint16_t *)codes)[i];
    case T_U32: return ((const uint32_t *)codes)[i];
    case T_U64: { uint64_t v = ((const uint64_t *)codes)[i]; return v > INT64_MAX ? -1 : (int64_t)v; }
    default: return ((const int64_t *)codes)[i];
    }
}

/* One pass over [lo, hi): for each sample its (weighted) loss, weight, weighted label, weighted
 * prediction (a logit's sigmoid), count, whether its weighted loss is infinite and its label, added into
 * out[g * GROUP_FIELDS ...] of its group g (compensated sums). Losses per sample: hard labels
 * log_plus (1 ulp), soft labels log_term (1.5 ulp), logits log1p_unit(exp) + c |z| (1.5 ulp),
 * values only libm handles by libm; an infinite loss is counted (the caller warns), not refused.
 * REFERENCE for invalid input or a code outside [0, ngroups). */
static int grouped_range(const Inputs *in, const void *codes, int ct, Py_ssize_t ngroups,
                         double *out, Py_ssize_t lo, Py_ssize_t hi) {
    Buffers *B = new_buffers();
    if (!B) return -1;
    int status = OK;
    int soft = 0;
    for (Py_ssize_t b = lo; b < hi && status == OK; b += BLOCK) {
        int m = (int)(hi - b < BLOCK ? hi - b : BLOCK);
        const double *y = load(in->y, in->yt, b, m, B->y);
        const double *x = load(in->x, in->xt, b, m, B->x);
        const double *w = in->w ? load(in->w, in->wt, b, m, B->w) : NULL;
        int clean, invalid = 0, s = 0;
        if (in->logits) clean = logit_losses(y, x, w, m, B->buf, 0);
        else {
            clean = 0;
            if (!soft) clean = hard_losses(y, x, w, m, B->buf);
            if (!clean) {
                classify(y, x, w, m, 0, &invalid, &s);
                if (invalid) { status = REFERENCE; break; }
                soft = s;
                if (soft) clean = soft_losses(y, x, w, m, B->buf);
            }
        }
        if (!clean) {
            classify(y, x, w, m, in->logits, &invalid, &s);
            if (invalid) { status = REFERENCE; break; }
            rare_block(y, x, w, m, in->logits, B->buf);
        }
        double *pred = B->buf2;
        if (in->logits) {
            for (int i = 0; i < m; i++) {
                double z = x[i], a = fabs(z);
                double e = exp_neg(-(a < EXP_LIMIT ? a : EXP_LIMIT));
                double sig = (z >= 0.0 ? 1.0 : e) / (1.0 + e);
                pred[i] = a > EXP_LIMIT ? (z > 0.0 ? 1.0 : 0.0) : sig;
            }
        } else {
            for (int i = 0; i < m; i++) pred[i] = x[i];
        }
        /* the weighted label and prediction, a zero weight dropping its sample (0 * inf) */
        double *wy = B->y2, *wp = B->x2;
        if (w) {
            for (int i = 0; i < m; i++) {
                wy[i] = w[i] == 0.0 ? 0.0 : y[i] * w[i];
                wp[i] = w[i] == 0.0 ? 0.0 : pred[i] * w[i];
            }
        }
        const double *wv = w ? w : ONES, *yv = w ? wy : y, *pv = w ? wp : pred;
        for (int i = 0; i < m; i++) {
            int64_t g = code_at(codes, ct, b + i);
            if (g < 0 || g >= ngroups) { status = REFERENCE; break; }
            double *acc = out + g * GROUP_FIELDS;
            double loss = B->buf[i];
            /* the four sums at once: TwoSum gives the same exact error as Neumaier's branch */
            group_add(acc, loss, wv[i], yv[i], pv[i]);
            acc[8] += 1.0;
            /* infinite: the sample's own loss, not a finite one whose product with a large
             * weight overflowed (that sum is then refused below the kernel, not counted) */
            acc[9] += loss == INFINITY && (!w || group_loss_infinite(y[i], x[i], in->logits));
            acc[10] += y[i];
        }
    }
    free_buffers(B);
    return status;
}

/* ------------------------------------------------------------------ the Python interface */

typedef struct { Py_buffer view; int held; } Buf;

static int get_buffer(PyObject *obj, Buf *b, int writable, int t, Py_ssize_t need, const char *what) {
    b->held = 0;
    if (obj == Py_None) return 0;
    if (t < 0 || t >= T_COUNT) { PyErr_Format(PyExc_ValueError, "%s: unknown dtype code %d", what, t); return -1; }
    if (PyObject_GetBuffer(obj, &b->view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    b->held = 1;
    if (b->view.itemsize != ITEMSIZE[t] || need > b->view.len / ITEMSIZE[t]) {  /* need * size could wrap */
        PyErr_Format(PyExc_ValueError, "%s: itemsize %zd or length %zd does not fit dtype code %d and %zd samples",
                     what, b->view.itemsize, b->view.len, t, need);
        return -1;
    }
    return 0;
}

/* get_buffer for an argument that must be an array: None is refused here (get_buffer accepts it
 * for the optional ones, then leaves the view unset, which a caller that reads it would follow). */
static int get_array(PyObject *obj, Buf *b, int writable, int t, Py_ssize_t need, const char *what) {
    b->held = 0;
    if (obj == Py_None) { PyErr_Format(PyExc_TypeError, "%s: an array is required, not None", what); return -1; }
    return get_buffer(obj, b, writable, t, need, what);
}

static void release(Buf *b) { if (b->held) PyBuffer_Release(&b->view); b->held = 0; }

static int check_range(Py_ssize_t lo, Py_ssize_t hi) {
    if (lo < 0 || hi < lo) { PyErr_SetString(PyExc_ValueError, "bad range"); return -1; }
    return 0;
}

/* sums(y, yt, x, xt, w, wt, lo, hi, logits, f32, stats) -> (status, (8 floats)) */
static PyObject *py_sums(PyObject *self, PyObject *args) {
    PyObject *yo, *xo, *wo;
    int yt, xt, wt, logits, f32, stats;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "OiOiOinnppp", &yo, &yt, &xo, &xt, &wo, &wt, &lo, &hi, &logits, &f32, &stats))
        return NULL;
    if (check_range(lo, hi) < 0) return NULL;
    Buf y, x, w;
    w.held = x.held = 0;
    if (get_array(yo, &y, 0, yt, hi, "y") < 0 || get_array(xo, &x, 0, xt, hi, "x") < 0
        || get_buffer(wo, &w, 0, wt, hi, "w") < 0) {
        release(&y); release(&x); release(&w);
        return NULL;
    }
    Inputs in = {y.view.buf, yt, x.view.buf, xt, w.held ? w.view.buf : NULL, wt, logits, f32};
    double out[8];
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = sums_range(&in, lo, hi, stats, out);
    Py_END_ALLOW_THREADS
    release(&y); release(&x); release(&w);
    if (status < 0) return PyErr_NoMemory();
    return Py_BuildValue("i(dddddddd)", status, out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7]);
}

/* losses(y, yt, x, xt, out, ot, lo, hi, logits) -> status */
static PyObject *py_losses(PyObject *self, PyObject *args) {
    PyObject *yo, *xo, *oo;
    int yt, xt, ot, logits;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "OiOiOinnp", &yo, &yt, &xo, &xt, &oo, &ot, &lo, &hi, &logits)) return NULL;
    if (check_range(lo, hi) < 0) return NULL;
    if (ot != T_F32 && ot != T_F64) { PyErr_SetString(PyExc_ValueError, "out must be float32 or float64"); return NULL; }
    Buf y, x, o;
    x.held = o.held = 0;
    if (get_array(yo, &y, 0, yt, hi, "y") < 0 || get_array(xo, &x, 0, xt, hi, "x") < 0
        || get_array(oo, &o, 1, ot, hi, "out") < 0) {
        release(&y); release(&x); release(&o);
        return NULL;
    }
    Inputs in = {y.view.buf, yt, x.view.buf, xt, NULL, 0, logits, 0};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = logits ? logit_losses_range(&in, o.view.buf, ot, lo, hi) : probability_losses_range(&in, o.view.buf, ot, lo, hi);
    Py_END_ALLOW_THREADS
    release(&y); release(&x); release(&o);
    if (status < 0) return PyErr_NoMemory();
    return PyLong_FromLong(status);
}

/* grouped(y, yt, x, xt, w, wt, codes, ct, ngroups, out, lo, hi, logits) -> status; out: float64,
 * ngroups * GROUP_FIELDS, added to. */
static PyObject *py_grouped(PyObject *self, PyObject *args) {
    PyObject *yo, *xo, *wo, *co, *oo;
    int yt, xt, wt, ct, logits;
    Py_ssize_t ngroups, lo, hi;
    if (!PyArg_ParseTuple(args, "OiOiOiOinOnnp", &yo, &yt, &xo, &xt, &wo, &wt, &co, &ct, &ngroups, &oo, &lo, &hi, &logits))
        return NULL;
    if (check_range(lo, hi) < 0) return NULL;
    if (ct == T_F16 || ct == T_F32 || ct == T_F64 || ct == T_BOOL) {
        PyErr_SetString(PyExc_ValueError, "codes must be integers"); return NULL;
    }
    Buf y, x, w, c, o;
    x.held = w.held = c.held = o.held = 0;
    if (get_array(yo, &y, 0, yt, hi, "y") < 0 || get_array(xo, &x, 0, xt, hi, "x") < 0
        || get_buffer(wo, &w, 0, wt, hi, "w") < 0 || get_buffer(co, &c, 0, ct, hi, "codes") < 0
        || get_array(oo, &o, 1, T_F64, ngroups * GROUP_FIELDS, "out") < 0) {
        release(&y); release(&x); release(&w); release(&c); release(&o);
        return NULL;
    }
    Inputs in = {y.view.buf, yt, x.view.buf, xt, w.held ? w.view.buf : NULL, wt, logits, 0};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = grouped_range(&in, c.view.buf, ct, ngroups, (double *)o.view.buf, lo, hi);
    Py_END_ALLOW_THREADS
    release(&y); release(&x); release(&w); release(&c); release(&o);
    if (status < 0) return PyErr_NoMemory();
    return PyLong_FromLong(status);
}

/* block(kind, y, p, tol=-1, yt=float64, pt=float64) -> (invalid, soft, loss): one product block
 * of labels and predictions of dtype codes yt and pt (a pair the products read in place), for
 * tests. kind 0 hard probabilities, 1 soft probabilities, 2 logits, 3 logits with the float32 exp,
 * 4 soft probabilities with the float32 log. */
static PyObject *py_block(PyObject *self, PyObject *args) {
    int kind, yt = T_F64, pt = T_F64;
    PyObject *yo, *po;
    double tol = -1.0;
    if (!PyArg_ParseTuple(args, "iOO|dii", &kind, &yo, &po, &tol, &yt, &pt)) return NULL;
    if (yt < 0 || yt >= T_COUNT || pt < 0 || pt >= T_COUNT
        || product_read_type(yt, 1) != yt || product_read_type(pt, 0) != pt) {
        PyErr_SetString(PyExc_ValueError, "no product block reads these dtypes in place");
        return NULL;
    }
    Buf y, p;
    p.held = 0;
    if (get_array(yo, &y, 0, yt, BLOCK, "y") < 0 || get_array(po, &p, 0, pt, BLOCK, "p") < 0) {
        release(&y); release(&p);
        return NULL;
    }
    Buffers *B = new_buffers();
    if (!B) {
        release(&y); release(&p);
        return PyErr_NoMemory();
    }
    const Products *P = products_for(yt, pt);
    int invalid = 0, soft = 0;
    double loss;
    const void *yy = y.view.buf, *pp = p.view.buf;
    if (kind == 0) loss = P->hard(yy, pp, B->buf, &invalid, &soft, tol > 0 ? tol : TOLERANCE64);
    else if (kind == 1 || kind == 4) loss = P->soft(yy, pp, B->buf, B->buf2, &invalid, kind == 4,
                                                   tol > 0 ? tol : (kind == 4 ? TOLERANCE32 : TOLERANCE64));
    else loss = P->logit(yy, pp, B->buf, B->buf2, &invalid, kind == 3,
                         tol > 0 ? tol : (kind == 3 ? TOLERANCE32 : TOLERANCE64));
    free_buffers(B);
    release(&y); release(&p);
    return Py_BuildValue("iid", invalid, soft, loss);
}

/* vector(kind, a, c, out): a bare function elementwise on float64 arrays, for tests. */
static PyObject *py_vector(PyObject *self, PyObject *args) {
    int kind;
    PyObject *ao, *co, *oo;
    if (!PyArg_ParseTuple(args, "iOOO", &kind, &ao, &co, &oo)) return NULL;
    Buf a, c, o;
    c.held = o.held = 0;
    if (PyObject_GetBuffer(ao, &a.view, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    a.held = 1;
    Py_ssize_t n = a.view.len / 8;
    if (get_buffer(co, &c, 0, T_F64, n, "c") < 0 || get_array(oo, &o, 1, T_F64, n, "out") < 0
        || a.view.itemsize != 8) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "float64 arrays expected");
        release(&a); release(&c); release(&o);
        return NULL;
    }
    const double *x = a.view.buf, *cc = c.held ? c.view.buf : NULL;
    double *out = o.view.buf;
#define EACH(expr) for (Py_ssize_t i = 0; i < n; i++) { double v = x[i]; (void)v; out[i] = (expr); } break;
    /* one loop per function, so that each vectorizes as it does inside the kernels */
    switch (kind) {
    case 0: if (cc) { EACH(log_plus(v, cc[i])) } else { EACH(log_plus(v, 0.0)) }
    case 1: EACH(log_plus(1.0 - v, -v - ((1.0 - v) - 1.0)))
    case 2: EACH(log_term(1.0 - v, -v - ((1.0 - v) - 1.0)))
    case 3: EACH(log1p_unit(v))
    case 4: EACH(exp_neg(v))
    case 5: EACH(exp_neg_short(v))
    case 6: EACH(softplus_exact(v))
    case 7: EACH(log1p_unit(exp_neg(-fabs(v))) + (v > 0.0 ? v : 0.0))
    case 8: EACH(softplus_short(v))
    case 9: EACH(log_short(v))
    default: EACH(NAN)
    }
#undef EACH
    release(&a); release(&c); release(&o);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ training: loss and gradient */
/* For the framework adapters' training step: per element the loss and its derivative with
 * respect to the prediction, both in float64; the derivative times `scale` (the reduction's 1/n)
 * rounded once into the predictions' dtype, the losses summed (pairwise per block, Neumaier
 * across blocks) or stored rounded once. Float64 results: hard labels only (each loss one
 * softplus_exact or log_plus, within 1 ulp); float32 results take soft labels too (float64
 * terms, both non-negative, rounded once). REFERENCE for invalid input, an infinite loss or soft
 * labels with a float64 result: the caller's reference path reports or computes them. */

/* d/dz = (1 - y) sigmoid(z) - y sigmoid(-z), sigmoid(|z|) = 1 / (1 + e), sigmoid(-|z|) = e / (1 + e). */
static inline double logit_grad(double y, double z, double e) {
    double sp = 1.0 / (1.0 + e), sn = e * sp;
    return (1.0 - y) * (z >= 0.0 ? sp : sn) - y * (z >= 0.0 ? sn : sp);
}

/* Float32 logits: the derivative of a soft label again with the full exp. sigmoid(z) - y cancels
 * where sigmoid(z) is near y (a converged soft target), and exp_neg_short's 2^-37 relative error
 * (1e-12 absolute) was then more than the whole derivative: wrong by millions of float32 ulps, even
 * in sign. Hard labels do not cancel; |z| >= EXP_LIMIT is train_logits_fixup's (libm exp). */
static void train_soft_logit_grad(const double *restrict y, const double *restrict z, int m, double scale,
                                  double *restrict grad) {
    for (int i = 0; i < m; i++) {
        double yi = y[i], zi = z[i], a = fabs(zi);
        if (yi != 0.0 && yi != 1.0 && a < EXP_LIMIT) grad[i] = logit_grad(yi, zi, exp_neg(-a)) * scale;
    }
}

/* Logits, one block; 0 when some element needs train_fixup. */
static int train_logits(const double *restrict y, const double *restrict z, int m, int f64, double scale,
                        double *restrict loss, double *restrict grad) {
    int64_t clean = 1;
    if (f64) {
        for (int i = 0; i < m; i++) {
            double zi = z[i], yi = y[i], a = fabs(zi);
            clean &= ((yi == 0.0) | (yi == 1.0)) & (a <= -SOFTPLUS_LOW);
            double e = exp_neg(-(a < EXP_LIMIT ? a : EXP_LIMIT));
            double s = yi != 0.0 ? -zi : zi;
            double c = s < SOFTPLUS_LOW ? SOFTPLUS_LOW : (s > SOFTPLUS_HIGH ? SOFTPLUS_HIGH : s);
            double v = softplus_exact(c);
            loss[i] = s >= SOFTPLUS_HIGH ? s : v;
            grad[i] = logit_grad(yi, zi, e) * scale;
        }
    } else {
        for (int i = 0; i < m; i++) {
            double zi = z[i], yi = y[i], a = fabs(zi);
            clean &= (yi >= 0.0) & (yi <= 1.0) & (a <= EXP_LIMIT);
            double e = exp_neg_short(-(a < EXP_LIMIT ? a : EXP_LIMIT));
            double cz = (zi > 0.0 ? 1.0 - yi : yi) * a;
            loss[i] = log1p_unit(e) + cz;
            grad[i] = logit_grad(yi, zi, e) * scale;
        }
    }
    return (int)clean;
}

/* A logit block that was not clean: finite logits beyond the fast formulas' range by libm;
 * REFERENCE for NaN, infinite logits, labels outside [0, 1], soft labels with a float64 result. */
static int train_logits_fixup(const double *y, const double *z, int m, int f64, double scale,
                              double *loss, double *grad) {
    for (int i = 0; i < m; i++) {
        double zi = z[i], yi = y[i], a = fabs(zi);
        if (!(yi >= 0.0 && yi <= 1.0) || !(a < INFINITY)) return REFERENCE;
        if (f64 && yi != 0.0 && yi != 1.0) return REFERENCE;
        if (a > (f64 ? -SOFTPLUS_LOW : EXP_LIMIT)) {
            loss[i] = scalar_logit(yi, zi);
            grad[i] = logit_grad(yi, zi, exp(-a)) * scale;
        }
    }
    return OK;
}

/* Probabilities, one block. Hard labels: -log q, q = p or 1 - p = a + c exactly, derivative
 * -1/p or 1/(a + c) (first-order in c); float32 results with soft labels: -(y log p + (1 - y)
 * log(1 - p)), derivative (p - y) / (p (1 - p)). REFERENCE where neither is clean. */
static int train_probabilities(const double *restrict y, const double *restrict p, int m, int f64, double scale,
                               double *restrict loss, double *restrict grad) {
    int64_t clean = 1;
    for (int i = 0; i < m; i++) {
        double pi = p[i], yi = y[i];
        double a = 1.0 - pi;
        double c = -pi - (a - 1.0);
        int64_t one = yi != 0.0;
        double q = one ? pi : a, qc = one ? 0.0 : c;
        clean &= ((yi == 0.0) | (yi == 1.0)) & (pi >= 0.0) & (pi <= 1.0) & (q >= TINY);
        loss[i] = -log_plus(q, qc);
        double r = 1.0 / q;
        r = r - r * (r * qc);  /* r * r would overflow for q < 1e-154 */
        grad[i] = (one ? -r : r) * scale;
    }
    if (clean || f64) return clean ? OK : REFERENCE;
    /* float32 results, soft labels somewhere: the hard formula where the label is 0 or 1 */
    clean = 1;
    for (int i = 0; i < m; i++) {
        double pi = p[i], yi = y[i];
        double a = 1.0 - pi;
        double c = -pi - (a - 1.0);
        int64_t one = yi != 0.0, hard = (yi == 0.0) | (yi == 1.0);
        double q = one ? pi : a, qc = one ? 0.0 : c;
        clean &= (yi >= 0.0) & (yi <= 1.0) & (pi >= 0.0) & (pi <= 1.0)
                 & (hard ? q >= TINY : (pi >= TINY) & (a >= TINY));
        double soft = -(yi * log_core(pi, 0.0, 0) + (1.0 - yi) * log_term(a, c));
        loss[i] = hard ? -log_plus(q, qc) : soft;
        double r = 1.0 / q;
        r = r - r * (r * qc);
        double g = hard ? (one ? -r : r) : (pi - yi) / __builtin_fma(pi, a, pi * c);
        grad[i] = g * scale;
    }
    return clean ? OK : REFERENCE;
}

/* Logits, a block summed (mean or sum): the loss as in logit_product (c |z| summed, one log of
 * prod (1 + e) per block, its error bound checked against tol), the derivative with the same e.
 * grad NULL: the loss only. -1 where logit_product would refuse (|z| > 708, the bound, invalid
 * input): the block is then computed per element. */
static double train_logit_product(const double *restrict y, const double *restrict z, int m, int f32,
                                  double scale, double tol, double *restrict buf, double *restrict linear,
                                  double *restrict grad) {
    int64_t ok = 1;
    for (int i = 0; i < m; i++) {
        double zi = z[i], yi = y[i], a = fabs(zi);
        ok &= (yi >= 0.0) & (yi <= 1.0) & (a <= EXP_LIMIT);
        double ac = a < EXP_LIMIT ? a : EXP_LIMIT;
        double e = f32 ? exp_neg_short(-ac) : exp_neg(-ac);
        linear[i] = (zi > 0.0 ? 1.0 - yi : yi) * a;
        buf[i] = 1.0 + e;
        if (grad) grad[i] = logit_grad(yi, zi, e) * scale;
    }
    if (!ok) return -1.0;
    for (int i = m; i < BLOCK; i++) buf[i] = 1.0;
    for (int half = BLOCK / 2; half >= 1; half /= 2)
        for (int i = 0; i < half; i++) buf[i] *= buf[i + half];
    double loss = tree_sum(linear, m) + log(buf[0]);
    double bound = 4.0 * BLOCK * U + (6.0 * U + (f32 ? 1.6e-11 : 0.0)) * loss;
    return bound <= tol * loss ? loss : -1.0;
}

/* [lo, hi): the derivative into grad (the predictions' dtype), the losses into losses (same
 * dtype) or, when losses is NULL, their sum into sum[0] + sum[1]. */
static int train_range(const Inputs *in, void *grad, void *losses, double scale, Py_ssize_t lo, Py_ssize_t hi,
                       double sum[2]) {
    Buffers *B = new_buffers();
    if (!B) return -1;
    int f64 = in->xt == T_F64, status = OK;
    double total = 0.0, err = 0.0;
    for (Py_ssize_t b = lo; b < hi; b += BLOCK) {
        int m = (int)(hi - b < BLOCK ? hi - b : BLOCK);
        const double *y = load(in->y, in->yt, b, m, B->y);
        const double *x = load(in->x, in->xt, b, m, B->x);
        double *loss = B->buf, *g = B->buf2;
        if (in->logits && !losses) {
            double tol = in->xt == T_F32 ? TOLERANCE32 : TOLERANCE64;
            double block = train_logit_product(y, x, m, in->xt == T_F32, scale, tol, loss, B->w, grad ? g : NULL);
            if (block >= 0.0) {
                if (grad && in->xt == T_F32) train_soft_logit_grad(y, x, m, scale, g);
                if (grad) store(grad, in->xt, b, g, m);
                add2(&total, &err, block);
                continue;
            }
        }
        if (in->logits) {
            if (!train_logits(y, x, m, f64, scale, loss, g))
                status = train_logits_fixup(y, x, m, f64, scale, loss, g);
        } else {
            status = train_probabilities(y, x, m, f64, scale, loss, g);
        }
        if (status != OK) break;
        if (grad && in->logits && in->xt == T_F32) train_soft_logit_grad(y, x, m, scale, g);
        if (grad) store(grad, in->xt, b, g, m);
        if (losses) store(losses, in->xt, b, loss, m);
        else add2(&total, &err, tree_sum(loss, m));
    }
    free_buffers(B);
    sum[0] = total;
    sum[1] = err;
    return status;
}

/* train(y, yt, x, xt, grad, losses, scale, lo, hi, logits) -> (status, sum hi, sum lo); grad and
 * losses: None or writable arrays of x's dtype (float32 or float64). */
static PyObject *py_train(PyObject *self, PyObject *args) {
    PyObject *yo, *xo, *go, *oo;
    int yt, xt, logits;
    double scale;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "OiOiOOdnnp", &yo, &yt, &xo, &xt, &go, &oo, &scale, &lo, &hi, &logits))
        return NULL;
    if (check_range(lo, hi) < 0) return NULL;
    if (xt != T_F32 && xt != T_F64) { PyErr_SetString(PyExc_ValueError, "x must be float32 or float64"); return NULL; }
    Buf y, x, g, o;
    x.held = g.held = o.held = 0;
    if (get_array(yo, &y, 0, yt, hi, "y") < 0 || get_array(xo, &x, 0, xt, hi, "x") < 0
        || get_buffer(go, &g, 1, xt, hi, "grad") < 0 || get_buffer(oo, &o, 1, xt, hi, "losses") < 0) {
        release(&y); release(&x); release(&g); release(&o);
        return NULL;
    }
    Inputs in = {y.view.buf, yt, x.view.buf, xt, NULL, 0, logits, xt == T_F32};
    double sum[2];
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = train_range(&in, g.held ? g.view.buf : NULL, o.held ? o.view.buf : NULL, scale, lo, hi, sum);
    Py_END_ALLOW_THREADS
    release(&y); release(&x); release(&g); release(&o);
    if (status < 0) return PyErr_NoMemory();
    return Py_BuildValue("idd", status, sum[0], sum[1]);
}

/* ------------------------------------------------------------------ the memory floor (benchmarks) */

/* Sum of the 64-bit words of bytes [lo, hi) of one array, eight independent lanes: nothing but
 * the loads, so the time it takes is what reading the bytes costs on this machine. */
static uint64_t word_sum(const unsigned char *base, Py_ssize_t lo, Py_ssize_t hi) {
    const unsigned char *b = base + lo, *end = base + hi;
    uint64_t lanes[8] = {0};
    for (; b + 64 <= end; b += 64) {
        uint64_t w[8];
        memcpy(w, b, 64);
        for (int k = 0; k < 8; k++) lanes[k] += w[k];
    }
    uint64_t total = 0;
    for (; b < end; b++) total += *b;
    for (int k = 0; k < 8; k++) total += lanes[k];
    return total;
}

/* stream(y, yt, x, xt, lo, hi) -> int: reads samples [lo, hi) of y and x once (a checksum of
 * their bytes), with the GIL released. The floor under every kernel: benchmarks print it beside
 * them, so a row limited by memory bandwidth shows as such. */
static PyObject *py_stream(PyObject *self, PyObject *args) {
    PyObject *yo, *xo;
    int yt, xt;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "OiOinn", &yo, &yt, &xo, &xt, &lo, &hi)) return NULL;
    if (check_range(lo, hi) < 0) return NULL;
    Buf y, x;
    x.held = 0;
    if (get_array(yo, &y, 0, yt, hi, "y") < 0 || get_array(xo, &x, 0, xt, hi, "x") < 0) {
        release(&y); release(&x);
        return NULL;
    }
    uint64_t total;
    Py_BEGIN_ALLOW_THREADS
    total = word_sum(y.view.buf, lo * ITEMSIZE[yt], hi * ITEMSIZE[yt])
            + word_sum(x.view.buf, lo * ITEMSIZE[xt], hi * ITEMSIZE[xt]);
    Py_END_ALLOW_THREADS
    release(&y); release(&x);
    return PyLong_FromUnsignedLongLong(total);
}

/* ------------------------------------------------------------------ diagnostics (logloss.diagnose) */
#include "diagnostics.c"

/* ------------------------------------------------- orderings (the exact in-memory diagnostics) */
#include "ordering.c"

static PyMethodDef methods[] = {
    {"sums", py_sums, METH_VARARGS, "Loss, weight, label and prediction sums over a range."},
    {"losses", py_losses, METH_VARARGS, "Per-element losses for hard labels over a range."},
    {"grouped", py_grouped, METH_VARARGS, "Per-group sufficient statistics over a range."},
    {"block", py_block, METH_VARARGS, "One product block (tests)."},
    {"vector", py_vector, METH_VARARGS, "A bare function elementwise (tests)."},
    {"train", py_train, METH_VARARGS, "Loss and scaled gradient in one pass (training step)."},
    {"stream", py_stream, METH_VARARGS, "Read two arrays once: the memory floor (benchmarks)."},
    DIAGNOSTICS_METHODS
    ORDERING_METHODS
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_kernels_" STR(PATH_NAME), .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC CAT(PyInit__kernels_, PATH_NAME)(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PyModule_AddIntConstant(m, "BLOCK", BLOCK);
    PyModule_AddIntConstant(m, "CHUNK", CHUNK);
    PyModule_AddIntConstant(m, "OK", OK);
    PyModule_AddIntConstant(m, "REFERENCE", REFERENCE);
    PyModule_AddIntConstant(m, "GROUP_FIELDS", GROUP_FIELDS);
    PyModule_AddObject(m, "SOFTPLUS_LOW", PyFloat_FromDouble(SOFTPLUS_LOW));
    PyModule_AddObject(m, "SOFTPLUS_HIGH", PyFloat_FromDouble(SOFTPLUS_HIGH));
    PyModule_AddObject(m, "TOLERANCE32", PyFloat_FromDouble(TOLERANCE32));
    PyModule_AddStringConstant(m, "PATH", STR(PATH_NAME));
    diag_add_constants(m);
    return m;
}
