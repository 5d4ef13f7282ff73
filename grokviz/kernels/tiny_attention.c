/* Causal softmax attention for many tiny examples: a few heads of a few dimensions over a few dozen keys.
 *
 * The adder's attention is 4,096 products of [12 x 7] by [7 x 33] per ensemble step: too small for
 * a matrix library (each product in a batch costs about 0.5 us of overhead) and too short along keys
 * for a vectorised softmax. Here every operation runs across T examples at once, as one SIMD
 * instruction on a `vec` of T floats (GCC/Clang vector extensions, which the compiler lowers to
 * the machine's SIMD; measured on AVX-512 only). A tile of T examples is transposed into that layout as it is read, and back as
 * it is written; within a tile, every innermost loop makes independent updates (an axpy, not a dot
 * product), so successive multiply-adds do not wait on each other.
 *
 * Layouts (float32, contiguous; TransformerLens's [batch, pos, head_index, d_head]):
 *   q [g, b, nq, h, e]   queries at positions q0 .. q0 + nq - 1; query i sees keys 0 .. q0 + i
 *   k, v [g, b, ns, h, e]
 *   z [g, b, nq, h, e]   the attention's output
 *   p [g, h, tiles, nq, ns, T]   the pattern saved for the backward pass, in the tiles' own layout
 *                        (tiles = ceil(b / T); zeros in the future; padding examples hold junk)
 * g counts independent groups of b examples (ensemble members); each group has its own tiles.
 * The backward pass takes dz like z and writes dq, dk, dv like q, k, v.
 *
 * e = d_head is the compile-time D_HEAD, so that loops over it unroll into registers. Built by
 * grokviz/kernels/tiny_attention.py with the system C compiler (-O3 -march=native);
 * tests/kernels/test_tiny_attention.py checks it against the float64 formula.
 */
#include <string.h>

#define T 16 /* examples per tile: one AVX-512 register of float32 */
#ifndef D_HEAD
#error "compile with -DD_HEAD=<d_head>"
#endif
#define E D_HEAD
typedef float vec __attribute__((vector_size(T * sizeof(float))));
typedef int ivec __attribute__((vector_size(T * sizeof(int))));
typedef float uvec __attribute__((vector_size(T * sizeof(float)), aligned(sizeof(float)))); /* unaligned */

static int min_int(int a, int b) { return a < b ? a : b; }
static int max_int(int a, int b) { return a > b ? a : b; }

static vec splat(float x) { return x - (vec){0}; }

/* The larger of a and b lane by lane; b where they do not compare (NaN). */
static vec vmax(vec a, vec b) {
    ivec a_wins = a > b;
    return (vec)(((ivec)a & a_wins) | ((ivec)b & ~a_wins));
}

/* exp(x) for x <= 0 (scores minus their maximum), Cephes' expf: x = n ln2 + r, |r| <= ln2 / 2,
 * exp(r) by a degree-7 polynomial, 2^n by the exponent bits; relative error about 2e-7. */
static vec vexp(vec x) {
    x = vmax(splat(-87.0f), x); /* exp(-87) ~ 1.6e-38: 2^n stays a normal float; a NaN stays NaN */
    vec fx = x * 1.44269504088896341f + 0.5f;
    ivec n = __builtin_convertvector(fx, ivec); /* truncates toward zero: floor for fx < 0 below */
    vec nf = __builtin_convertvector(n, vec);
    ivec above = nf > fx;
    nf = nf - (vec)((ivec)splat(1.0f) & above);
    n = __builtin_convertvector(nf, ivec);
    vec r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
    vec y = 1.9875691500e-4f - (vec){0};
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    return y * (vec)((n + 127) << 23);
}

/* A 16 x 16 transpose in registers: four rounds exchanging half-blocks between rows w apart
 * (__builtin_shufflevector: GCC 12 or later, or Clang). */
_Static_assert(T == 16, "the transpose below is written for 16 lanes");
#define TRANSPOSE_ROUND(w, ...)                                                    \
    for (int i = 0; i < T; i++)                                                    \
        if (!(i & w)) {                                                            \
            vec lo = __builtin_shufflevector(m[i], m[i + w], __VA_ARGS__);         \
            m[i + w] = __builtin_shufflevector(m[i], m[i + w], HI_##w);            \
            m[i] = lo;                                                             \
        }
#define HI_8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define HI_4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define HI_2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define HI_1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
static inline __attribute__((always_inline)) void transpose(vec m[T]) {
    TRANSPOSE_ROUND(8, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
    TRANSPOSE_ROUND(4, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27)
    TRANSPOSE_ROUND(2, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29)
    TRANSPOSE_ROUND(1, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30)
}

/* Examples b0 .. b0 + nt - 1 of one head of [b][rows][h][e] -> tile [rows * e] of vecs, zeros past
 * nt: a transpose. A full tile of one head moves 16 columns at a time through registers; the rest
 * (the last columns, a partial tile, several heads) one float at a time. Inlined: through a call,
 * the 16 registers of a block would go through memory. */
static inline __attribute__((always_inline)) void load_tile(const float *src, long b0, int nt, int rows, int h, vec *tile) {
    int n = rows * E, done = 0; /* columns per example; columns moved through registers */
    if (nt == T && h == 1) {
        for (; done + T <= n; done += T) {
            vec m[T];
            for (int t = 0; t < T; t++) m[t] = *(const uvec *)(src + (b0 + t) * n + done);
            transpose(m);
            for (int j = 0; j < T; j++) tile[done + j] = m[j];
        }
    }
    float *lanes = (float *)tile;
    if (nt < T) memset(tile, 0, sizeof(vec) * n);
    for (int t = 0; t < nt; t++) {
        const float *x = src + (b0 + t) * n * h;
        for (int col = done; col < n; col++) lanes[col * T + t] = x[(col / E) * h * E + col % E];
    }
}

/* The inverse of load_tile for the first nt examples. */
static inline __attribute__((always_inline)) void store_tile(float *dst, long b0, int nt, int rows, int h, const vec *tile) {
    int n = rows * E, done = 0;
    if (nt == T && h == 1) {
        for (; done + T <= n; done += T) {
            vec m[T];
            for (int j = 0; j < T; j++) m[j] = tile[done + j];
            transpose(m);
            for (int t = 0; t < T; t++) *(uvec *)(dst + (b0 + t) * n + done) = m[t];
        }
    }
    const float *lanes = (const float *)tile;
    for (int t = 0; t < nt; t++) {
        float *x = dst + (b0 + t) * n * h;
        for (int col = done; col < n; col++) x[(col / E) * h * E + col % E] = lanes[col * T + t];
    }
}

int tiny_attention_forward(const float *q, const float *k, const float *v, float *z, float *p, long g, long b, int h,
                           int nq, int ns, int e, int q0, float scale) {
    if (e != D_HEAD) return 1;
    vec qt[nq * E], kt[ns * E], vt[ns * E], zt[nq * E];
    long tiles = (b + T - 1) / T;
    for (long group = 0; group < g * h; group++) {
        long example0 = (group / h) * b, head = group % h; /* the group's first example, its head */
        long qo = example0 * nq * h * E + head * E, ko = example0 * ns * h * E + head * E;
        for (long tile = 0; tile < tiles; tile++) {
            long b0 = tile * T;
            int nt = (int)(b - b0 < T ? b - b0 : T);
            load_tile(q + qo, b0, nt, nq, h, qt);
            load_tile(k + ko, b0, nt, ns, h, kt);
            load_tile(v + ko, b0, nt, ns, h, vt);
            for (int i = 0; i < nq; i++) {
                int nk = max_int(0, min_int(q0 + i + 1, ns)); /* the keys this query sees */
                vec *s = (vec *)(p + ((group * tiles + tile) * nq + i) * ns * T); /* scores, then pattern */
                vec qi[E], zi[E];
                for (int d = 0; d < E; d++) qi[d] = qt[i * E + d] * scale, zi[d] = (vec){0};
                vec m = splat(-3.0e38f), sum = {0};
                for (int j = 0; j < nk; j++) {
                    vec acc = {0};
                    for (int d = 0; d < E; d++) acc += qi[d] * kt[j * E + d];
                    s[j] = acc;
                }
                for (int j = 0; j < nk; j++) m = vmax(m, s[j]);
                for (int j = 0; j < nk; j++) {
                    s[j] = vexp(s[j] - m);
                    sum += s[j];
                }
                vec inv = 1.0f / sum;
                for (int j = 0; j < nk; j++) {
                    s[j] *= inv;
                    for (int d = 0; d < E; d++) zi[d] += s[j] * vt[j * E + d];
                }
                for (int j = nk; j < ns; j++) s[j] = (vec){0}; /* the future */
                for (int d = 0; d < E; d++) zt[i * E + d] = zi[d];
            }
            store_tile(z + qo, b0, nt, nq, h, zt);
        }
    }
    return 0;
}

int tiny_attention_backward(const float *q, const float *k, const float *v, const float *p, const float *dz,
                            float *dq, float *dk, float *dv, long g, long b, int h, int nq, int ns, int e,
                            int q0, float scale) {
    if (e != D_HEAD) return 1;
    vec qt[nq * E], kt[ns * E], vt[ns * E], dzt[nq * E], dqt[nq * E], dkt[ns * E], dvt[ns * E];
    vec ds[ns]; /* d loss / d scores of one query */
    long tiles = (b + T - 1) / T;
    for (long group = 0; group < g * h; group++) {
        long example0 = (group / h) * b, head = group % h; /* the group's first example, its head */
        long qo = example0 * nq * h * E + head * E, ko = example0 * ns * h * E + head * E;
        for (long tile = 0; tile < tiles; tile++) {
            long b0 = tile * T;
            int nt = (int)(b - b0 < T ? b - b0 : T);
            const vec *pt = (const vec *)(p + (group * tiles + tile) * nq * ns * T); /* [nq][ns] */
            load_tile(q + qo, b0, nt, nq, h, qt);
            load_tile(k + ko, b0, nt, ns, h, kt);
            load_tile(v + ko, b0, nt, ns, h, vt);
            load_tile(dz + qo, b0, nt, nq, h, dzt);
            memset(dkt, 0, sizeof dkt);
            memset(dvt, 0, sizeof dvt);
            for (int i = 0; i < nq; i++) {
                int nk = max_int(0, min_int(q0 + i + 1, ns));
                const vec *pi = pt + i * ns;
                vec qi[E], dzi[E], dqi[E], rowdot = {0};
                for (int d = 0; d < E; d++) qi[d] = qt[i * E + d] * scale, dzi[d] = dzt[i * E + d], dqi[d] = (vec){0};
                for (int j = 0; j < nk; j++) {
                    vec dp = {0}; /* d loss / d pattern[i, j] */
                    for (int d = 0; d < E; d++) {
                        dp += dzi[d] * vt[j * E + d];
                        dvt[j * E + d] += pi[j] * dzi[d];
                    }
                    ds[j] = dp;
                    rowdot += pi[j] * dp;
                }
                for (int j = 0; j < nk; j++) {
                    vec dsj = pi[j] * (ds[j] - rowdot); /* the softmax's backward */
                    for (int d = 0; d < E; d++) {
                        dqi[d] += dsj * kt[j * E + d];
                        dkt[j * E + d] += dsj * qi[d]; /* qi carries the scale */
                    }
                }
                for (int d = 0; d < E; d++) dqt[i * E + d] = dqi[d] * scale;
            }
            store_tile(dq + qo, b0, nt, nq, h, dqt);
            store_tile(dk + ko, b0, nt, ns, h, dkt);
            store_tile(dv + ko, b0, nt, ns, h, dvt);
        }
    }
    return 0;
}
