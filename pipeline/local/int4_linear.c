/* A decode step's int4 weight kernel for a few rows: y = x W^T with W in 4-bit groups of 32 inputs.
 *
 * Why not torch's int4 kernel: it multiplies in floats, converting every 4-bit weight to a float first,
 * which on a CPU without AVX512 made it most of a decode step (~18 ms of one core per token for the
 * 135M model, docs/bench/backend.md). Here each row of activations is first rounded to int16 per group of
 * 32 inputs (one float scale each), and a group's 32 products are summed in integers (AVX2 vpmaddwd on the
 * codes widened to 16 bits); one float multiply-add per group applies both scales. The weights are read
 * once per call for all rows.
 *
 * A weight row is `groups` blocks of 20 bytes (pipeline/local/qweights.py writes them): the group's scale
 * and zero as bfloat16, then 16 bytes holding its 32 codes, byte j = code j (low nibble) | code j + 16
 * (high). A weight is (code - 8) * scale + zero, so a row's output is
 *     sum over groups of  scale * xscale * sum_j code_j xq_j  +  (zero - 8 scale) * sum_j x_j,
 * with the activations' group sums sum_j x_j taken exactly in float.
 *
 * Output rows are split between `threads` OpenMP threads. Built with -fopenmp against the libgomp that
 * torch has already loaded (same soname: the loader reuses it), these are torch's own pool threads, with
 * its wait policy, so they never compete with an idle torch worker. Plain C99 plus AVX2 intrinsics where
 * the compiler targets AVX2; a portable loop elsewhere (the same sums).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define HAVE_AVX2 1
#endif

#define GROUP 32
#define MAX_ROWS 8
/* Activations in int16: int8 (as llama.cpp rounds them, with vpmaddubsw) put the real model's projections
 * 1-2% off the float result (its activations have channels 30-170x their mean, which take a group's range)
 * and changed the top token at 5.6% of positions; int16 costs about the same instructions (vpmaddwd on two
 * halves instead of vpmaddubsw + vpmaddwd). A group's integer sum stays below 2^31: 32 * 15 * 32767. */
#define QMAX 32767.0f

typedef struct {
    uint16_t scale, zero; /* bfloat16 */
    uint8_t codes[GROUP / 2];
} Block;

static inline float bf16_value(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* x [n] -> xq [n] int16 with one scale per group (x ~ scale * xq, |xq| <= QMAX), and each group's exact sum. */
static void quantize_row(const float *x, int n, int16_t *xq, float *scales, float *sums) {
    for (int g = 0; g < n / GROUP; g++) {
        const float *v = x + g * GROUP;
        float top = 0.0f, sum = 0.0f;
        for (int j = 0; j < GROUP; j++) {
            const float a = fabsf(v[j]);
            top = a > top ? a : top;
            sum += v[j];
        }
        const float scale = top / QMAX, inverse = top > 0.0f ? QMAX / top : 0.0f;
        for (int j = 0; j < GROUP; j++) xq[g * GROUP + j] = (int16_t)lrintf(v[j] * inverse);
        scales[g] = scale;
        sums[g] = sum;
    }
}

#ifdef HAVE_AVX2
static inline float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* A group's 32 codes against activation row `a`: its float sum added to `acc`. */
#define GROUP_STEP(b, g, a, acc, zero_part)                                                                      \
    do {                                                                                                       \
        const int16_t *x_ = xq + (long)(a) * in + (g) * GROUP;                                                  \
        const __m256i p_ = _mm256_add_epi32(                                                                   \
            _mm256_madd_epi16(low_##b, _mm256_loadu_si256((const __m256i *)x_)),                               \
            _mm256_madd_epi16(high_##b, _mm256_loadu_si256((const __m256i *)(x_ + GROUP / 2))));              \
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p_), _mm256_set1_ps(scale_##b * xs[(a) * groups + (g)]), acc);  \
        zero_part += offset_##b * sums[(a) * groups + (g)];                                                   \
    } while (0)

#define UNPACK(b, g)                                                                                           \
    const Block *block_##b = w + (g);                                                                          \
    const float scale_##b = bf16_value(block_##b->scale);                                                      \
    const float offset_##b = bf16_value(block_##b->zero) - 8.0f * scale_##b;                                   \
    const __m128i raw_##b = _mm_loadu_si128((const __m128i *)block_##b->codes);                               \
    const __m256i low_##b = _mm256_cvtepu8_epi16(_mm_and_si128(raw_##b, low_nibbles));                         \
    const __m256i high_##b = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw_##b, 4), low_nibbles))

/* One weight row against `rows` activation rows (a constant after inlining). Two groups per iteration
 * into two sets of sums: with one running sum per activation row, one row was bound by waiting on it
 * (~4 cycles a group). */
static inline __attribute__((always_inline)) void row_dot(const Block *w, int groups, int rows, int in,
                                                          const int16_t *xq, const float *xs, const float *sums,
                                                          float *y, long y_stride) {
    __m256 even[MAX_ROWS], odd[MAX_ROWS];
    float zero_even[MAX_ROWS], zero_odd[MAX_ROWS];
    for (int a = 0; a < rows; a++) {
        even[a] = odd[a] = _mm256_setzero_ps();
        zero_even[a] = zero_odd[a] = 0.0f;
    }
    const __m128i low_nibbles = _mm_set1_epi8(0x0F);
    int g = 0;
    for (; g + 2 <= groups; g += 2) {
        UNPACK(0, g);
        UNPACK(1, g + 1);
        for (int a = 0; a < rows; a++) {
            GROUP_STEP(0, g, a, even[a], zero_even[a]);
            GROUP_STEP(1, g + 1, a, odd[a], zero_odd[a]);
        }
    }
    if (g < groups) {
        UNPACK(0, g);
        for (int a = 0; a < rows; a++) GROUP_STEP(0, g, a, even[a], zero_even[a]);
    }
    for (int a = 0; a < rows; a++)
        y[a * y_stride] = horizontal_sum(_mm256_add_ps(even[a], odd[a])) + zero_even[a] + zero_odd[a];
}
#else
static inline void row_dot(const Block *w, int groups, int rows, int in, const int16_t *xq, const float *xs,
                           const float *sums, float *y, long y_stride) {
    for (int a = 0; a < rows; a++) {
        float total = 0.0f;
        for (int g = 0; g < groups; g++) {
            const Block *b = w + g;
            const int16_t *x = xq + (long)a * in + g * GROUP;
            int32_t dot = 0;
            for (int j = 0; j < GROUP / 2; j++) dot += (b->codes[j] & 0x0F) * x[j] + (b->codes[j] >> 4) * x[j + GROUP / 2];
            const float scale = bf16_value(b->scale);
            total += scale * xs[a * groups + g] * (float)dot + (bf16_value(b->zero) - 8.0f * scale) * sums[a * groups + g];
        }
        y[a * y_stride] = total;
    }
}
#endif

/* y [rows, out] = x [rows, in] W^T for the int4 weight `blocks` [out, in / 32] (1 <= rows <= 8,
 * in % 32 == 0, out % 4 == 0), float32 in and out, on `threads` threads. */
void int4_linear(const void *blocks, int out, int in, const float *x, int rows, float *y, int threads) {
    const int groups = in / GROUP;
    int16_t xq[rows * in];
    float xs[rows * groups], sums[rows * groups];
    for (int a = 0; a < rows; a++)
        quantize_row(x + (long)a * in, in, xq + (long)a * in, xs + a * groups, sums + a * groups);
    const Block *w = (const Block *)blocks;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int r = 0; r < out; r++) {
        const Block *row = w + (long)r * groups;
        switch (rows) {  /* a constant row count per case, so each inlined copy keeps its sums in registers */
        case 1: row_dot(row, groups, 1, in, xq, xs, sums, y + r, out); break;
        case 2: row_dot(row, groups, 2, in, xq, xs, sums, y + r, out); break;
        case 3: row_dot(row, groups, 3, in, xq, xs, sums, y + r, out); break;
        case 4: row_dot(row, groups, 4, in, xq, xs, sums, y + r, out); break;
        default: row_dot(row, groups, rows, in, xq, xs, sums, y + r, out); break;
        }
    }
}
