// maxpool_forward.cu: 2-D max pooling, forward. Each output keeps its window's maximum
// and WHERE that maximum was, for the backward pass (maxpool_backward.cu).
//
//   x             (N, C, H, W)      C-contiguous, float32 or float64
//   y             (N, C, OH, OW)    same dtype
//   argmax_index  (N, C, OH, OW)    int64: the winner's flat index  row * WP + column  in the
//                                   PADDED (HP, WP) = (H + 2 PH, W + 2 PW) plane of its (n, c)
//
//   y[n, c, oh, ow] = max over (kh, kw) of x_padded[n, c, oh*SH + kh, ow*SW + kw]   (padding = -inf)
//
// One thread computes ONE output element (n, c, oh, ow): it scans the KH*KW taps in (kh, kw)
// order, starting from tap (0, 0); a later tap wins only if STRICTLY greater. So ties go to
// the first tap, and a NaN met first stays the result: exactly the NumPy reference's rule.
//
// Must equal (bit for bit, y and argmax_index): max_pool2d_forward_numpy in minigrad/ops/pool.py.
// CPU reference: max_pool_forward_cpu_f32 / _f64 below run the SAME per-thread function,
// max_pool_forward_element, in a plain loop. Entry points: max_pool_forward_f32, _f64.
#include "geometry.cuh"

// -inf without <math.h> (NVRTC has no system headers): the IEEE result of -1 / 0.
template <typename T>
__host__ __device__ inline T minus_infinity() {
    T zero = T(0);
    return -T(1) / zero;
}

// Writes y[i] and argmax_index[i] for the flat output index i of (n, c, oh, ow).
template <typename T>
__host__ __device__ void max_pool_forward_element(const T* x, T* y, long long* argmax_index,
                                                  index_t i, const Geometry& g) {
    int ow = (int)(i % g.out_w);
    int oh = (int)((i / g.out_w) % g.out_h);
    index_t plane = i / ((index_t)g.out_w * g.out_h);                // n * C + c
    const T* x_plane = x + plane * g.height * g.width;
    int padded_w = g.width + 2 * g.pad_w;
    T best = T(0);
    long long best_index = -1;
    for (int kh = 0; kh < g.kernel_h; ++kh) {
        int row = oh * g.stride_h + kh;                               // in the padded plane
        int h = row - g.pad_h;
        for (int kw = 0; kw < g.kernel_w; ++kw) {
            int column = ow * g.stride_w + kw;
            int w = column - g.pad_w;
            bool inside = h >= 0 && h < g.height && w >= 0 && w < g.width;
            T value = inside ? x_plane[(index_t)h * g.width + w] : minus_infinity<T>();
            if (best_index < 0 || value > best) {                     // first tap, or strictly greater
                best = value;
                best_index = (long long)row * padded_w + column;
            }
        }
    }
    y[i] = best;
    argmax_index[i] = best_index;
}

template <typename T>
__device__ void max_pool_forward_kernel(const T* x, T* y, long long* argmax_index, const Geometry& g) {
    index_t total = (index_t)g.batch * g.channels * g.out_h * g.out_w;
    index_t step = (index_t)blockDim.x * gridDim.x;
    for (index_t i = (index_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        max_pool_forward_element(x, y, argmax_index, i, g);
    }
}

extern "C" __global__ void max_pool_forward_f32(const float* x, float* y, long long* argmax_index, Geometry g) {
    max_pool_forward_kernel<float>(x, y, argmax_index, g);
}

extern "C" __global__ void max_pool_forward_f64(const double* x, double* y, long long* argmax_index, Geometry g) {
    max_pool_forward_kernel<double>(x, y, argmax_index, g);
}

#ifndef __CUDACC_RTC__   // host code: compiled by nvcc for the tests, never by NVRTC
template <typename T>
static void max_pool_forward_cpu(const T* x, T* y, long long* argmax_index, const Geometry* g) {
    index_t total = (index_t)g->batch * g->channels * g->out_h * g->out_w;
    for (index_t i = 0; i < total; ++i) max_pool_forward_element(x, y, argmax_index, i, *g);
}

extern "C" void max_pool_forward_cpu_f32(const float* x, float* y, long long* argmax_index, const Geometry* g) {
    max_pool_forward_cpu(x, y, argmax_index, g);
}
extern "C" void max_pool_forward_cpu_f64(const double* x, double* y, long long* argmax_index, const Geometry* g) {
    max_pool_forward_cpu(x, y, argmax_index, g);
}
#endif
