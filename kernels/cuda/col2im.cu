// col2im.cu: fold columns back into an image, summing where windows overlap. It is the
// adjoint (transpose) of im2col, so conv2d's backward uses it for dx:  dx = col2im(w^T @ dy).
//
//   cols  (C*KH*KW, N*OH*OW)    row = (c, kh, kw), column = (n, oh, ow), both in C order
//   dx    (N, C, H, W)
//
//   dx[n, c, h, w] = sum over (kh, kw, oh, ow) with  h = oh*SH - PH + kh*DH,
//                                                   w = ow*SW - PW + kw*DW
//                    of cols[(c, kh, kw), (n, oh, ow)]
//
// One thread computes ONE input pixel dx[n, c, h, w]: a GATHER over the at most KH*KW
// columns that read it (output_reading in geometry.cuh inverts h = oh*SH - PH + kh*DH).
// Each output element has one writer, so there are no atomics, and the sum runs in a fixed
// (kh, kw) order: the result is the same bit for bit on every run.
//
// Must equal: the NumPy reference col2im in minigrad/ops/im2col.py (there a scatter-add;
// the order of the additions differs, so float results agree to rounding, not bit for bit).
// CPU reference: col2im_cpu_f32 / col2im_cpu_f64 below run the SAME per-thread function,
// col2im_element, in a plain loop. Entry points for CuPy: col2im_f32, col2im_f64.
#include "geometry.cuh"

// dx[i] for the flat index i of (n, c, h, w).
template <typename T>
__host__ __device__ T col2im_element(const T* cols, index_t i, const Geometry& g) {
    int w = (int)(i % g.width);
    int h = (int)((i / g.width) % g.height);
    int c = (int)((i / ((index_t)g.width * g.height)) % g.channels);
    int n = (int)(i / ((index_t)g.width * g.height * g.channels));
    index_t columns = (index_t)g.batch * g.out_h * g.out_w;       // N*OH*OW
    T sum = T(0);
    for (int kh = 0; kh < g.kernel_h; ++kh) {
        int oh = output_reading(h, kh, g.stride_h, g.pad_h, g.dilation_h, g.out_h);
        if (oh < 0) continue;
        for (int kw = 0; kw < g.kernel_w; ++kw) {
            int ow = output_reading(w, kw, g.stride_w, g.pad_w, g.dilation_w, g.out_w);
            if (ow < 0) continue;
            index_t row = ((index_t)c * g.kernel_h + kh) * g.kernel_w + kw;
            index_t column = ((index_t)n * g.out_h + oh) * g.out_w + ow;
            sum += cols[row * columns + column];
        }
    }
    return sum;
}

template <typename T>
__device__ void col2im_kernel(const T* cols, T* dx, const Geometry& g) {
    index_t total = (index_t)g.batch * g.channels * g.height * g.width;
    index_t step = (index_t)blockDim.x * gridDim.x;
    for (index_t i = (index_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        dx[i] = col2im_element(cols, i, g);
    }
}

extern "C" __global__ void col2im_f32(const float* cols, float* dx, Geometry g) {
    col2im_kernel<float>(cols, dx, g);
}

extern "C" __global__ void col2im_f64(const double* cols, double* dx, Geometry g) {
    col2im_kernel<double>(cols, dx, g);
}

#ifndef __CUDACC_RTC__   // host code: compiled by nvcc for the tests, never by NVRTC
template <typename T>
static void col2im_cpu(const T* cols, T* dx, const Geometry* g) {
    index_t total = (index_t)g->batch * g->channels * g->height * g->width;
    for (index_t i = 0; i < total; ++i) dx[i] = col2im_element(cols, i, *g);
}

extern "C" void col2im_cpu_f32(const float* cols, float* dx, const Geometry* g) { col2im_cpu(cols, dx, g); }
extern "C" void col2im_cpu_f64(const double* cols, double* dx, const Geometry* g) { col2im_cpu(cols, dx, g); }
#endif
