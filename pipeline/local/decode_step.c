/* The small operations of one decode step of the local decoder (pipeline/local/fastlm.py), for a few rows.
 *
 * A decode step of a 135M model is 30 layers x ~25 torch ops around the four weight kernels; each op costs
 * a few microseconds of dispatch for a few hundred floats of work, so for one stream the ops around the
 * kernels took about as long as the kernels themselves (docs/bench/backend.md). Here each layer's work
 * between two weight kernels is one call: RMSNorm (with the residual add before it), RoPE with the cache
 * write and single-token attention, and SiLU-gating. The weight kernels stay torch's.
 *
 * Plain C99 without torch headers: pipeline/local/native.py builds it with the machine's C compiler and
 * calls it through ctypes; without a compiler the decoder keeps its torch ops. Every array is row-major
 * and contiguous; inputs marked "f32 or bf16" are the weight kernels' outputs (bf16, or float32 where a
 * LoRA adapter's delta was added). Each function is single-threaded and keeps no state.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Round to nearest, ties to even, as torch's float32 -> bfloat16 conversion does (NaN stays NaN). */
static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline void load_row(const void *src, int bf16, long offset, int n, float *dst) {
    if (bf16) {
        const uint16_t *p = (const uint16_t *)src + offset;
        for (int i = 0; i < n; i++) dst[i] = from_bf16(p[i]);
    } else {
        memcpy(dst, (const float *)src + offset, (size_t)n * sizeof(float));
    }
}

/* q . k with eight partial sums, which the compiler keeps in one vector register (a single running sum
 * would be a chain of dependent adds), then added up. */
static inline float dot(const float *q, const float *k, int n) {
    float part[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    int d = 0;
    for (; d + 8 <= n; d += 8)
        for (int i = 0; i < 8; i++) part[i] += q[d + i] * k[d + i];
    float sum = 0.0f;
    for (; d < n; d++) sum += q[d] * k[d];
    for (int i = 0; i < 8; i++) sum += part[i];
    return sum;
}

/* For each of `rows` rows of x [rows, n]: x += delta (when delta is not NULL; f32 or bf16), then
 * out = x / sqrt(mean(x^2) + eps) * weight, written as float32 (out) and bfloat16 (out_bf16). */
void add_norm(float *x, const void *delta, int delta_bf16, const float *weight, int rows, int n, float eps,
              float *out, uint16_t *out_bf16) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (long)r * n;
        if (delta != NULL) {
            if (delta_bf16) {
                const uint16_t *d = (const uint16_t *)delta + (long)r * n;
                for (int i = 0; i < n; i++) xr[i] += from_bf16(d[i]);
            } else {
                const float *d = (const float *)delta + (long)r * n;
                for (int i = 0; i < n; i++) xr[i] += d[i];
            }
        }
        float squares = 0.0f;
        for (int i = 0; i < n; i++) squares += xr[i] * xr[i];
        float scale = 1.0f / sqrtf(squares / (float)n + eps);
        float *o = out + (long)r * n;
        uint16_t *ob = out_bf16 + (long)r * n;
        for (int i = 0; i < n; i++) {
            o[i] = xr[i] * scale * weight[i];
            ob[i] = to_bf16(o[i]);
        }
    }
}

/* One new token's attention for each row (a sequence) of a decode step.
 *
 * qkv [rows, (heads + 2 kv_heads) * head_dim] (f32 or bf16): q and k heads pair-interleaved (pair j of a
 * head is elements 2j, 2j+1), then v. rope [positions, head_dim / 2, 2]: cos, sin per position and pair.
 * Row r is at position pos[r] of its cache caches[r], laid out [layers, 2 (k, v), kv_heads, capacity[r],
 * head_dim] float32: its roped k and its v are written at pos[r] of layer `layer`, then each query head
 * attends over positions 0..pos[r] of its key/value head (query heads g * group .. g * group + group - 1
 * share kv head g, group = heads / kv_heads). The query heads of a kv head are done together, so its keys
 * and values are read from memory once, not once per query head (at long contexts they outgrow the
 * caches). scratch: at least width + group * (max(pos) + 2) floats. Output [rows, heads * head_dim] as
 * float32 (out) and bfloat16 (out_bf16). */
void attend(const void *qkv, int qkv_bf16, int rows, int heads, int kv_heads, int head_dim, const float *rope,
            const int64_t *pos, float *const *caches, const int64_t *capacity, int layer, float *scratch,
            float *out, uint16_t *out_bf16) {
    const int width = (heads + 2 * kv_heads) * head_dim, half = head_dim / 2, group = heads / kv_heads;
    const float inv_sqrt = 1.0f / sqrtf((float)head_dim);
    float *row = scratch;
    for (int r = 0; r < rows; r++) {
        const long p = pos[r], cap = capacity[r], span = p + 1;
        float *scores = scratch + width, *totals = scores + group * span;  /* [group, span], [group] */
        load_row(qkv, qkv_bf16, (long)r * width, width, row);
        const float *angle = rope + p * head_dim;  /* [half, 2] */
        for (int h = 0; h < heads + kv_heads; h++) {  /* q heads, then k heads; v is not rotated */
            float *v = row + h * head_dim;
            for (int j = 0; j < half; j++) {
                const float a = v[2 * j], b = v[2 * j + 1], c = angle[2 * j], s = angle[2 * j + 1];
                v[2 * j] = a * c - b * s;
                v[2 * j + 1] = a * s + b * c;
            }
        }
        float *layer_kv = caches[r] + (long)layer * 2 * kv_heads * cap * head_dim;
        for (int g = 0; g < kv_heads; g++) {
            memcpy(layer_kv + ((long)g * cap + p) * head_dim, row + (heads + g) * head_dim,
                   (size_t)head_dim * sizeof(float));
            memcpy(layer_kv + ((long)(kv_heads + g) * cap + p) * head_dim, row + (heads + kv_heads + g) * head_dim,
                   (size_t)head_dim * sizeof(float));
        }
        for (int g = 0; g < kv_heads; g++) {
            const float *queries = row + g * group * head_dim;
            const float *keys = layer_kv + (long)g * cap * head_dim;
            const float *values = layer_kv + (long)(kv_heads + g) * cap * head_dim;
            for (long t = 0; t < span; t++) {
                const float *k = keys + t * head_dim;
                for (int j = 0; j < group; j++) {
                    scores[j * span + t] = dot(queries + j * head_dim, k, head_dim) * inv_sqrt;
                }
            }
            for (int j = 0; j < group; j++) {
                float *s = scores + j * span, top = -INFINITY, total = 0.0f;
                for (long t = 0; t < span; t++) top = s[t] > top ? s[t] : top;
                for (long t = 0; t < span; t++) {
                    s[t] = expf(s[t] - top);
                    total += s[t];
                }
                totals[j] = 1.0f / total;
            }
            float *o = out + (long)r * heads * head_dim + (long)g * group * head_dim;
            memset(o, 0, (size_t)group * head_dim * sizeof(float));
            for (long t = 0; t < span; t++) {
                const float *v = values + t * head_dim;
                for (int j = 0; j < group; j++) {
                    const float w = scores[j * span + t] * totals[j];
                    float *oj = o + j * head_dim;
                    for (int d = 0; d < head_dim; d++) oj[d] += w * v[d];
                }
            }
            uint16_t *ob = out_bf16 + (long)r * heads * head_dim + (long)g * group * head_dim;
            for (int i = 0; i < group * head_dim; i++) ob[i] = to_bf16(o[i]);
        }
    }
}

/* SwiGLU: out = silu(gate) * up for gate_up [rows, 2 inter] (f32 or bf16; gate first), as float32 (out)
 * and bfloat16 (out_bf16) [rows, inter]. */
void silu_mul(const void *gate_up, int gate_up_bf16, int rows, int inter, float *out, uint16_t *out_bf16) {
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < inter; i++) {
            const long at = (long)r * 2 * inter + i;
            float g, u;
            if (gate_up_bf16) {
                g = from_bf16(((const uint16_t *)gate_up)[at]);
                u = from_bf16(((const uint16_t *)gate_up)[at + inter]);
            } else {
                g = ((const float *)gate_up)[at];
                u = ((const float *)gate_up)[at + inter];
            }
            const float v = g / (1.0f + expf(-g)) * u;
            out[(long)r * inter + i] = v;
            out_bf16[(long)r * inter + i] = to_bf16(v);
        }
    }
}
