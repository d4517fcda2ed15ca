/* What the diagnostics kernel's histogram scatter costs by itself, outside the kernel: per row,
 * add {negative, positive, p, loss} (4 doubles) into the cell of its logit, as diagnostics.c
 * does, and the same add with parts taken away, so that its cost can be split into the cell's
 * cache misses, the read-add-write chain and building the 4-wide vector.
 *
 *   gcc -O2 -march=native benchmarks/diag_scatter.c -o /tmp/diag_scatter -lm
 *   /tmp/diag_scatter 65536        # the default resolution; then 1024 (fits L1), 8192 (L2)
 *
 * Rows: 2**24, predictions bell-shaped in (0.01, 0.91) as a model's are (logits -4.6..2.3),
 * labels drawn from them; "spread" cells (argument 2) visit every cell in a stride, each a miss.
 * Prints ns per row, min of 3 passes. Results: benchmarks/results-2core-epyc-avx512-diag-scatter-s10.txt */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef double v4 __attribute__((vector_size(32)));

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
    const int n = 1 << 24, R = argc > 1 ? atoi(argv[1]) : 65536;
    int32_t *cell = malloc(n * sizeof *cell);
    double *p = malloc(n * sizeof *p), *l = malloc(n * sizeof *l);
    int8_t *y = malloc(n);
    int64_t *count = calloc(R + 2, sizeof *count);
    double *h = calloc((size_t)(R + 2) * 4, sizeof *h), *h1 = calloc(R + 2, sizeof *h1);
    srand(1);
    for (int i = 0; i < n; i++) {
        double u = 0;
        for (int k = 0; k < 6; k++) u += rand() / (double)RAND_MAX;
        double pi = u / 6 * 0.9 + 0.01;
        p[i] = pi;
        y[i] = rand() < pi * RAND_MAX;
        l[i] = y[i] ? -log(pi) : -log1p(-pi);
        cell[i] = argc > 2 ? (int)(((int64_t)i * 7919) % R) + 1
                           : (int)((log(pi / (1 - pi)) + 20) * R / 40) + 1;
    }
    double best[4] = {1e9, 1e9, 1e9, 1e9};
    for (int pass = 0; pass < 3; pass++) {
        double t0 = now();
        for (int i = 0; i < n; i++) count[cell[i]]++;
        double t1 = now();
        for (int i = 0; i < n; i++) h1[cell[i]] += p[i];
        double t2 = now();
        for (int i = 0; i < n; i++) {
            double *c = h + (size_t)cell[i] * 4;
            v4 add = {p[i], p[i], p[i], p[i]}, v;
            memcpy(&v, c, sizeof v);
            v += add;
            memcpy(c, &v, sizeof v);
        }
        double t3 = now();
        for (int i = 0; i < n; i++) {
            double fy = y[i], *c = h + (size_t)cell[i] * 4;
            v4 add = {1.0 - fy, fy, p[i], l[i]}, v;
            memcpy(&v, c, sizeof v);
            v += add;
            memcpy(c, &v, sizeof v);
        }
        double t4 = now(), t[4] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3};
        for (int k = 0; k < 4; k++) best[k] = t[k] < best[k] ? t[k] : best[k];
    }
    printf("resolution %d, %s cells, ns per row: count (int64) %.2f | one double %.2f | "
           "4-wide, one value broadcast %.2f | 4-wide built as the kernel does %.2f\n",
           R, argc > 2 ? "spread" : "model-like", best[0] / n * 1e9, best[1] / n * 1e9,
           best[2] / n * 1e9, best[3] / n * 1e9);
    return (int)(count[1] + h[5] + h1[3]) == 12345;
}
