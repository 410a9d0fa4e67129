// rmsprop_step.cu: one RMSprop step (weight decay, centered, momentum, maximize) for EVERY parameter of a
// group in ONE launch, like sgd_step.cu: tables of the addresses of each tensor's p, g, square average v,
// gradient average g_avg and momentum buffer b, and the running ends of their sizes. Thread i updates
// one number as minigrad/optim/rmsprop.py does:
//
//   g' = (maximize ? -g : g) + weight_decay * p
//   v  = alpha * v + (1 - alpha) * g' * g'
//   centered:  g_avg = alpha * g_avg + (1 - alpha) * g'
//              r = sqrt(v - g_avg * g_avg) + eps
//   otherwise: r = sqrt(v) + eps
//   momentum > 0:  b = momentum * b + g' / r,   p = p - lr * b
//   otherwise:                                  p = p - lr * (g' / r)
//
// No bias correction, so the step number plays no part and the buffers simply start at zero (the
// wrapper in minigrad/fast/gpu.py makes them). The hyperparameters come as doubles and are rounded to
// T before use, as NumPy does with a Python float and a float32 array; every array operation is rounded
// once to T (step_math.cuh), in the reference's order. CPU reference: rmsprop_step_cpu_f32 / _f64 run
// rmsprop_element in a plain loop. Entry points: rmsprop_step_f32, rmsprop_step_f64.
// step_math.cuh: index_t, tensor_of (the binary search), and mul/add/divide/root rounded once each.
#include "step_math.cuh"

struct RmspropStep {             // all 8-byte fields: the same layout in C and in NumPy's structured dtype
    double lr, alpha, eps, weight_decay, momentum;
    long long centered, maximize, tensors;
};

template <typename T>
__host__ __device__ void rmsprop_element(const unsigned long long* params, const unsigned long long* grads,
                                         const unsigned long long* square_avgs, const unsigned long long* grad_avgs,
                                         const unsigned long long* buffers, const long long* ends,
                                         index_t i, const RmspropStep& s) {
    int t = tensor_of(ends, s.tensors, i);
    index_t j = i - (t > 0 ? ends[t - 1] : 0);
    T* p = (T*)params[t];
    T g = ((const T*)grads[t])[j];
    T* v = (T*)square_avgs[t];
    if (s.maximize) g = -g;
    if (s.weight_decay != 0) g = add<T>(g, mul<T>((T)s.weight_decay, p[j]));
    v[j] = add<T>(mul<T>(v[j], (T)s.alpha), mul<T>((T)(1.0 - s.alpha), mul<T>(g, g)));
    T r;
    if (s.centered) {
        T* g_avg = (T*)grad_avgs[t];
        g_avg[j] = add<T>(mul<T>(g_avg[j], (T)s.alpha), mul<T>((T)(1.0 - s.alpha), g));
        r = add<T>(root<T>(add<T>(v[j], -mul<T>(g_avg[j], g_avg[j]))), (T)s.eps);   // a - b == a + (-b) exactly
    } else {
        r = add<T>(root<T>(v[j]), (T)s.eps);
    }
    T d = divide<T>(g, r);
    if (s.momentum > 0) {
        T* b = (T*)buffers[t];
        b[j] = add<T>(mul<T>(b[j], (T)s.momentum), d);
        d = b[j];
    }
    p[j] = add<T>(p[j], -mul<T>((T)s.lr, d));
}

template <typename T>
__device__ void rmsprop_step_kernel(const unsigned long long* params, const unsigned long long* grads,
                                    const unsigned long long* square_avgs, const unsigned long long* grad_avgs,
                                    const unsigned long long* buffers, const long long* ends, const RmspropStep& s) {
    index_t total = ends[s.tensors - 1];
    index_t stride = (index_t)blockDim.x * gridDim.x;
    for (index_t i = (index_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        rmsprop_element<T>(params, grads, square_avgs, grad_avgs, buffers, ends, i, s);
    }
}

extern "C" __global__ void rmsprop_step_f32(const unsigned long long* params, const unsigned long long* grads,
                                            const unsigned long long* square_avgs, const unsigned long long* grad_avgs,
                                            const unsigned long long* buffers, const long long* ends, RmspropStep s) {
    rmsprop_step_kernel<float>(params, grads, square_avgs, grad_avgs, buffers, ends, s);
}

extern "C" __global__ void rmsprop_step_f64(const unsigned long long* params, const unsigned long long* grads,
                                            const unsigned long long* square_avgs, const unsigned long long* grad_avgs,
                                            const unsigned long long* buffers, const long long* ends, RmspropStep s) {
    rmsprop_step_kernel<double>(params, grads, square_avgs, grad_avgs, buffers, ends, s);
}

#ifndef __CUDACC_RTC__   // host code: compiled by nvcc for the tests, never by NVRTC
template <typename T>
static void rmsprop_step_cpu(const unsigned long long* params, const unsigned long long* grads,
                             const unsigned long long* square_avgs, const unsigned long long* grad_avgs,
                             const unsigned long long* buffers, const long long* ends, const RmspropStep* s) {
    for (index_t i = 0; i < ends[s->tensors - 1]; ++i) {
        rmsprop_element<T>(params, grads, square_avgs, grad_avgs, buffers, ends, i, *s);
    }
}

extern "C" void rmsprop_step_cpu_f32(const unsigned long long* params, const unsigned long long* grads,
                                     const unsigned long long* square_avgs, const unsigned long long* grad_avgs,
                                     const unsigned long long* buffers, const long long* ends, const RmspropStep* s) {
    rmsprop_step_cpu<float>(params, grads, square_avgs, grad_avgs, buffers, ends, s);
}

extern "C" void rmsprop_step_cpu_f64(const unsigned long long* params, const unsigned long long* grads,
                                     const unsigned long long* square_avgs, const unsigned long long* grad_avgs,
                                     const unsigned long long* buffers, const long long* ends, const RmspropStep* s) {
    rmsprop_step_cpu<double>(params, grads, square_avgs, grad_avgs, buffers, ends, s);
}
#endif
