// step_math.cuh: what the fused optimizer steps share (sgd_step.cu, adam_step.cu).
//
// Each product, sum, quotient and square root is rounded once to T, as NumPy rounds each array
// operation of the reference optimizers: the _rn intrinsics on the device, so that the compiler
// cannot contract a * b + c into a fused multiply-add; plain C on the host (the CPU references).
// Pasted into each .cu by minigrad/fast/gpu.py before NVRTC compiles it, like geometry.cuh.
#ifndef MINIGRAD_STEP_MATH_CUH
#define MINIGRAD_STEP_MATH_CUH
#include "geometry.cuh"

template <typename T> __host__ __device__ inline T mul(T a, T b);
template <typename T> __host__ __device__ inline T add(T a, T b);
template <> __host__ __device__ inline float mul<float>(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}
template <> __host__ __device__ inline double mul<double>(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}
template <> __host__ __device__ inline float add<float>(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}
template <> __host__ __device__ inline double add<double>(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}

template <typename T> __host__ __device__ inline T divide(T a, T b);
template <typename T> __host__ __device__ inline T root(T a);
template <> __host__ __device__ inline float divide<float>(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}
template <> __host__ __device__ inline double divide<double>(double a, double b) {
#ifdef __CUDA_ARCH__
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}
template <> __host__ __device__ inline float root<float>(float a) {
#ifdef __CUDA_ARCH__
    return __fsqrt_rn(a);
#else
    return __builtin_sqrtf(a);        // the host compiler's own: no system header needed
#endif
}
template <> __host__ __device__ inline double root<double>(double a) {
#ifdef __CUDA_ARCH__
    return __dsqrt_rn(a);
#else
    return __builtin_sqrt(a);
#endif
}

// The tensor that flat index i falls in: the first t with i < ends[t].
__host__ __device__ inline int tensor_of(const long long* ends, long long tensors, index_t i) {
    int lo = 0, hi = (int)tensors - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ends[mid] <= i) lo = mid + 1; else hi = mid;
    }
    return lo;
}

#endif  // MINIGRAD_STEP_MATH_CUH
