// sgd_step.cu: one SGD step (momentum, dampening, Nesterov, weight decay, maximize) for EVERY parameter
// of a group in ONE launch: a "multi-tensor" kernel. The parameters stay separate arrays; the launch
// gets tables of their addresses and the running ends of their sizes:
//
//   params, grads, buffers   (T,) unsigned long long   the address of tensor t's p, g, momentum buffer
//   ends                     (T,) long long            ends[t] = size[0] + ... + size[t]
//
// Thread i (a grid-stride loop over all ends[T-1] numbers) finds its tensor t by binary search in
// ends, and its element j = i - ends[t-1], and updates it exactly as minigrad/optim/sgd.py does:
//
//   g' = (maximize ? -g : g) + weight_decay * p
//   b  = g'                                   on the first step (the buffer starts as g')
//   b  = momentum * b + (1 - dampening) * g'  afterwards
//   d  = nesterov ? g' + momentum * b : b     (d = g' without momentum)
//   p  = p - lr * d
//
// The hyperparameters come as doubles and are rounded to T before use, as NumPy does with a
// Python float times a float32 array; each product and sum is rounded separately, as NumPy's are
// (mul and add below: the _rn intrinsics on the device, so the compiler cannot fuse them into FMAs).
// Must equal SGD.update (minigrad/optim/sgd.py) on every parameter. CPU reference: sgd_step_cpu_f32
// / _f64 below run the SAME per-thread function, sgd_element, in a plain loop.
// Entry points: sgd_step_f32, sgd_step_f64.
// step_math.cuh: index_t, tensor_of (the binary search) and mul/add rounded once each.
#include "step_math.cuh"

struct SgdStep {                 // all 8-byte fields: the same layout in C and in NumPy's structured dtype
    double lr, momentum, dampening, weight_decay;
    long long nesterov, maximize, first_step, tensors;
};

template <typename T>
__host__ __device__ void sgd_element(const unsigned long long* params, const unsigned long long* grads,
                                     const unsigned long long* buffers, const long long* ends,
                                     index_t i, const SgdStep& s) {
    int t = tensor_of(ends, s.tensors, i);
    index_t j = i - (t > 0 ? ends[t - 1] : 0);
    T* p = (T*)params[t];
    const T* g = (const T*)grads[t];
    T d = g[j];
    if (s.maximize) d = -d;
    if (s.weight_decay != 0) d = add<T>(d, mul<T>((T)s.weight_decay, p[j]));
    if (s.momentum != 0) {
        T* b = (T*)buffers[t];
        T v = s.first_step ? d : add<T>(mul<T>(b[j], (T)s.momentum), mul<T>((T)(1.0 - s.dampening), d));
        b[j] = v;
        d = s.nesterov ? add<T>(d, mul<T>((T)s.momentum, v)) : v;
    }
    p[j] = add<T>(p[j], -mul<T>((T)s.lr, d));
}

template <typename T>
__device__ void sgd_step_kernel(const unsigned long long* params, const unsigned long long* grads,
                                const unsigned long long* buffers, const long long* ends, const SgdStep& s) {
    index_t total = ends[s.tensors - 1];
    index_t stride = (index_t)blockDim.x * gridDim.x;
    for (index_t i = (index_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        sgd_element<T>(params, grads, buffers, ends, i, s);
    }
}

extern "C" __global__ void sgd_step_f32(const unsigned long long* params, const unsigned long long* grads,
                                        const unsigned long long* buffers, const long long* ends, SgdStep s) {
    sgd_step_kernel<float>(params, grads, buffers, ends, s);
}

extern "C" __global__ void sgd_step_f64(const unsigned long long* params, const unsigned long long* grads,
                                        const unsigned long long* buffers, const long long* ends, SgdStep s) {
    sgd_step_kernel<double>(params, grads, buffers, ends, s);
}

#ifndef __CUDACC_RTC__   // host code: compiled by nvcc for the tests, never by NVRTC
template <typename T>
static void sgd_step_cpu(const unsigned long long* params, const unsigned long long* grads,
                         const unsigned long long* buffers, const long long* ends, const SgdStep* s) {
    for (index_t i = 0; i < ends[s->tensors - 1]; ++i) sgd_element<T>(params, grads, buffers, ends, i, *s);
}

extern "C" void sgd_step_cpu_f32(const unsigned long long* params, const unsigned long long* grads,
                                 const unsigned long long* buffers, const long long* ends, const SgdStep* s) {
    sgd_step_cpu<float>(params, grads, buffers, ends, s);
}

extern "C" void sgd_step_cpu_f64(const unsigned long long* params, const unsigned long long* grads,
                                 const unsigned long long* buffers, const long long* ends, const SgdStep* s) {
    sgd_step_cpu<double>(params, grads, buffers, ends, s);
}
#endif
