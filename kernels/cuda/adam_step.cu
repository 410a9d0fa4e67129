// adam_step.cu: one Adam / AdamW step (L2 or decoupled weight decay, amsgrad, maximize) for EVERY
// parameter of a group in ONE launch, like sgd_step.cu: tables of the addresses of each tensor's
// p, g, m, v and v_max, and the running ends of their sizes. Thread i updates one number as
// minigrad/optim/adam.py does (t, the step number, is the same for the whole group):
//
//   g' = (maximize ? -g : g)
//   decoupled:  p = p * (1 - lr * weight_decay)      else  g' = g' + weight_decay * p
//   m = beta1 * m + (1 - beta1) * g'
//   v = beta2 * v + (1 - beta2) * g' * g'
//   amsgrad:    v_max = max(v_max, v), used in place of v below
//   p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// The two bias corrections come computed in double (as Python computes them); every array operation
// is rounded once to T (step_math.cuh). CPU reference: adam_step_cpu_f32 / _f64 run adam_element
// in a plain loop. Entry points: adam_step_f32, adam_step_f64.
// step_math.cuh: index_t, tensor_of (the binary search), and mul/add/divide/root rounded once each.
#include "step_math.cuh"

struct AdamStep {                // all 8-byte fields: the same layout in C and in NumPy's structured dtype
    double lr, beta1, beta2, eps, weight_decay, step_size, root_correction2;
    long long amsgrad, maximize, decoupled, tensors;
};

template <typename T>
__host__ __device__ void adam_element(const unsigned long long* params, const unsigned long long* grads,
                                      const unsigned long long* firsts, const unsigned long long* seconds,
                                      const unsigned long long* maxima, const long long* ends,
                                      index_t i, const AdamStep& s) {
    int t = tensor_of(ends, s.tensors, i);
    index_t j = i - (t > 0 ? ends[t - 1] : 0);
    T* p = (T*)params[t];
    T g = ((const T*)grads[t])[j];
    T* m = (T*)firsts[t];
    T* v = (T*)seconds[t];
    if (s.maximize) g = -g;
    if (s.weight_decay != 0) {
        if (s.decoupled) p[j] = mul<T>(p[j], (T)(1.0 - s.lr * s.weight_decay));
        else g = add<T>(g, mul<T>((T)s.weight_decay, p[j]));
    }
    m[j] = add<T>(mul<T>(m[j], (T)s.beta1), mul<T>((T)(1.0 - s.beta1), g));
    v[j] = add<T>(mul<T>(v[j], (T)s.beta2), mul<T>((T)(1.0 - s.beta2), mul<T>(g, g)));
    T second = v[j];
    if (s.amsgrad) {
        T* v_max = (T*)maxima[t];
        if (second > v_max[j] || second != second) v_max[j] = second;   // max, NaN winning as in NumPy
        second = v_max[j];
    }
    T denominator = add<T>(divide<T>(root<T>(second), (T)s.root_correction2), (T)s.eps);
    p[j] = add<T>(p[j], -mul<T>((T)s.step_size, divide<T>(m[j], denominator)));
}

template <typename T>
__device__ void adam_step_kernel(const unsigned long long* params, const unsigned long long* grads,
                                 const unsigned long long* firsts, const unsigned long long* seconds,
                                 const unsigned long long* maxima, const long long* ends, const AdamStep& s) {
    index_t total = ends[s.tensors - 1];
    index_t stride = (index_t)blockDim.x * gridDim.x;
    for (index_t i = (index_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        adam_element<T>(params, grads, firsts, seconds, maxima, ends, i, s);
    }
}

extern "C" __global__ void adam_step_f32(const unsigned long long* params, const unsigned long long* grads,
                                         const unsigned long long* firsts, const unsigned long long* seconds,
                                         const unsigned long long* maxima, const long long* ends, AdamStep s) {
    adam_step_kernel<float>(params, grads, firsts, seconds, maxima, ends, s);
}

extern "C" __global__ void adam_step_f64(const unsigned long long* params, const unsigned long long* grads,
                                         const unsigned long long* firsts, const unsigned long long* seconds,
                                         const unsigned long long* maxima, const long long* ends, AdamStep s) {
    adam_step_kernel<double>(params, grads, firsts, seconds, maxima, ends, s);
}

#ifndef __CUDACC_RTC__   // host code: compiled by nvcc for the tests, never by NVRTC
template <typename T>
static void adam_step_cpu(const unsigned long long* params, const unsigned long long* grads,
                          const unsigned long long* firsts, const unsigned long long* seconds,
                          const unsigned long long* maxima, const long long* ends, const AdamStep* s) {
    for (index_t i = 0; i < ends[s->tensors - 1]; ++i) adam_element<T>(params, grads, firsts, seconds, maxima, ends, i, *s);
}

extern "C" void adam_step_cpu_f32(const unsigned long long* params, const unsigned long long* grads,
                                  const unsigned long long* firsts, const unsigned long long* seconds,
                                  const unsigned long long* maxima, const long long* ends, const AdamStep* s) {
    adam_step_cpu<float>(params, grads, firsts, seconds, maxima, ends, s);
}

extern "C" void adam_step_cpu_f64(const unsigned long long* params, const unsigned long long* grads,
                                  const unsigned long long* firsts, const unsigned long long* seconds,
                                  const unsigned long long* maxima, const long long* ends, const AdamStep* s) {
    adam_step_cpu<double>(params, grads, firsts, seconds, maxima, ends, s);
}
#endif
