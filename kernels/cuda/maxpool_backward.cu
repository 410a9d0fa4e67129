// maxpool_backward.cu: 2-D max pooling, backward. The max is a selection, so dy flows
// only to the input that won each window; a pixel that won several overlapping windows
// (stride < kernel) collects all of their dy.
//
//   dy            (N, C, OH, OW)    float32 or float64
//   argmax_index  (N, C, OH, OW)    int64, from maxpool_forward.cu: row * WP + column of the
//                                   winner in the PADDED (HP, WP) plane of its (n, c)
//   dx            (N, C, H, W)
//
//   dx[n, c, h, w] = sum of dy[n, c, oh, ow] over the windows (oh, ow) that contain the pixel
//                    and whose argmax_index is (h + PH) * WP + (w + PW)
//
// One thread computes ONE input pixel dx[n, c, h, w]: a GATHER over the at most KH*KW windows
// that contain it (output_reading in geometry.cuh finds them). The argmax layout makes that
// possible: it is stored per output, and each pixel can list its windows. So there are no
// atomics (one writer per dx element) and the sum runs in a fixed (kh, kw) order: the result
// is deterministic. Winners in the padding (possible only when a window's real pixels are all
// -inf) are dropped, as the NumPy reference drops them when it crops the padding.
//
// Must equal: max_pool2d_backward_numpy in minigrad/ops/pool.py (a scatter-add there: same
// terms, possibly summed in another order). CPU reference: max_pool_backward_cpu_f32 / _f64
// below run the SAME per-thread function in a loop. Entry points: max_pool_backward_f32, _f64.
#include "geometry.cuh"

// dx[i] for the flat index i of (n, c, h, w).
template <typename T>
__host__ __device__ T max_pool_backward_element(const T* dy, const long long* argmax_index,
                                                index_t i, const Geometry& g) {
    int w = (int)(i % g.width);
    int h = (int)((i / g.width) % g.height);
    index_t plane = i / ((index_t)g.width * g.height);                // n * C + c
    index_t outputs = (index_t)g.out_h * g.out_w;                     // per plane
    long long me = (long long)(h + g.pad_h) * (g.width + 2 * g.pad_w) + (w + g.pad_w);
    T sum = T(0);
    for (int kh = 0; kh < g.kernel_h; ++kh) {
        int oh = output_reading(h, kh, g.stride_h, g.pad_h, 1, g.out_h);
        if (oh < 0) continue;
        for (int kw = 0; kw < g.kernel_w; ++kw) {
            int ow = output_reading(w, kw, g.stride_w, g.pad_w, 1, g.out_w);
            if (ow < 0) continue;
            index_t j = plane * outputs + (index_t)oh * g.out_w + ow;    // window (n, c, oh, ow)
            if (argmax_index[j] == me) sum += dy[j];
        }
    }
    return sum;
}

template <typename T>
__device__ void max_pool_backward_kernel(const T* dy, const long long* argmax_index, T* dx, const Geometry& g) {
    index_t total = (index_t)g.batch * g.channels * g.height * g.width;
    index_t step = (index_t)blockDim.x * gridDim.x;
    for (index_t i = (index_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        dx[i] = max_pool_backward_element(dy, argmax_index, i, g);
    }
}

extern "C" __global__ void max_pool_backward_f32(const float* dy, const long long* argmax_index, float* dx,
                                                 Geometry g) {
    max_pool_backward_kernel<float>(dy, argmax_index, dx, g);
}

extern "C" __global__ void max_pool_backward_f64(const double* dy, const long long* argmax_index, double* dx,
                                                 Geometry g) {
    max_pool_backward_kernel<double>(dy, argmax_index, dx, g);
}

#ifndef __CUDACC_RTC__   // host code: compiled by nvcc for the tests, never by NVRTC
template <typename T>
static void max_pool_backward_cpu(const T* dy, const long long* argmax_index, T* dx, const Geometry* g) {
    index_t total = (index_t)g->batch * g->channels * g->height * g->width;
    for (index_t i = 0; i < total; ++i) dx[i] = max_pool_backward_element(dy, argmax_index, i, *g);
}

extern "C" void max_pool_backward_cpu_f32(const float* dy, const long long* argmax_index, float* dx,
                                          const Geometry* g) {
    max_pool_backward_cpu(dy, argmax_index, dx, g);
}
extern "C" void max_pool_backward_cpu_f64(const double* dy, const long long* argmax_index, double* dx,
                                          const Geometry* g) {
    max_pool_backward_cpu(dy, argmax_index, dx, g);
}
#endif
