// im2col.cu: unfold every sliding window of x into one column of a matrix, so that a
// convolution becomes one matmul:  y = w.reshape(F, C*KH*KW) @ cols.
//
//   x     (N, C, H, W)          C-contiguous, float32 or float64
//   cols  (C*KH*KW, N*OH*OW)    row = (c, kh, kw), column = (n, oh, ow), both in C order
//
//   cols[(c, kh, kw), (n, oh, ow)] = x[n, c, oh*SH - PH + kh*DH, ow*SW - PW + kw*DW]
//                                    (0 where that falls in the zero padding)
//
// One thread computes ONE element of cols (grid-stride loop over all C*KH*KW*N*OH*OW of
// them). Neighbouring threads write neighbouring columns (n, oh, ow), so writes coalesce;
// reads of x are strided by SW, which the L1/L2 caches absorb.
//
// Must equal: the NumPy reference im2col in minigrad/ops/im2col.py.
// CPU reference: im2col_cpu_f32 / im2col_cpu_f64 below run the SAME per-thread function,
// im2col_element, in a plain loop; tests compile this file with nvcc and call them.
// Entry points for CuPy: im2col_f32, im2col_f64 (extern "C": found by name, no mangling).
#include "geometry.cuh"

// cols[i] for the flat index i = row * (N*OH*OW) + column.
template <typename T>
__host__ __device__ T im2col_element(const T* x, index_t i, const Geometry& g) {
    index_t columns = (index_t)g.batch * g.out_h * g.out_w;       // N*OH*OW
    index_t row = i / columns, column = i % columns;
    int kw = (int)(row % g.kernel_w);                             // row = (c, kh, kw)
    int kh = (int)((row / g.kernel_w) % g.kernel_h);
    int c = (int)(row / ((index_t)g.kernel_w * g.kernel_h));
    int ow = (int)(column % g.out_w);                             // column = (n, oh, ow)
    int oh = (int)((column / g.out_w) % g.out_h);
    int n = (int)(column / ((index_t)g.out_w * g.out_h));
    int h = oh * g.stride_h - g.pad_h + kh * g.dilation_h;        // the input pixel it reads
    int w = ow * g.stride_w - g.pad_w + kw * g.dilation_w;
    if (h < 0 || h >= g.height || w < 0 || w >= g.width) return T(0);   // zero padding
    return x[(((index_t)n * g.channels + c) * g.height + h) * g.width + w];
}

template <typename T>
__device__ void im2col_kernel(const T* x, T* cols, const Geometry& g) {
    index_t total = (index_t)g.channels * g.kernel_h * g.kernel_w * g.batch * g.out_h * g.out_w;
    index_t step = (index_t)blockDim.x * gridDim.x;
    for (index_t i = (index_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        cols[i] = im2col_element(x, i, g);
    }
}

extern "C" __global__ void im2col_f32(const float* x, float* cols, Geometry g) {
    im2col_kernel<float>(x, cols, g);
}

extern "C" __global__ void im2col_f64(const double* x, double* cols, Geometry g) {
    im2col_kernel<double>(x, cols, g);
}

#ifndef __CUDACC_RTC__   // host code: compiled by nvcc for the tests, never by NVRTC
template <typename T>
static void im2col_cpu(const T* x, T* cols, const Geometry* g) {
    index_t total = (index_t)g->channels * g->kernel_h * g->kernel_w * g->batch * g->out_h * g->out_w;
    for (index_t i = 0; i < total; ++i) cols[i] = im2col_element(x, i, *g);   // one "thread" at a time
}

extern "C" void im2col_cpu_f32(const float* x, float* cols, const Geometry* g) { im2col_cpu(x, cols, g); }
extern "C" void im2col_cpu_f64(const double* x, double* cols, const Geometry* g) { im2col_cpu(x, cols, g); }
#endif
