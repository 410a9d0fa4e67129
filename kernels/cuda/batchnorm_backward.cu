// batchnorm_backward.cu: batch normalisation in training mode, backward, with an optional fused ReLU,
// in ONE launch: one block per channel (batchnorm.cuh says how the block shares the channel).
//
//   x, dy, dx         (N, C, P)  C-contiguous, float32 or float64 (the caller reshapes (N, C, H, W))
//   relu_out          (N, C, P)  the fused forward's output z (read only with relu; else any array)
//   mean, inv_std     (C,)       float64, from the forward: mu and s
//   gamma             (C,)       in x's dtype
//   dgamma, dbeta     (C,)       float64 results
//
// Block c, over the channel's M = N P values (steps 6 to 8 of minigrad/ops/norm.py's derivation):
//
//   g       = dy, or with relu: dy where z > 0, else 0        the ReLU's backward, folded in
//   xhat    = (x - mu) s
//   dbeta   = sum g                                           block sum 1
//   dgamma  = sum g xhat                                      block sum 2
//   dx      = gamma s (g - dbeta/M - xhat dgamma/M)           in double, rounded once to T
//
// With relu, g is a select, as in the Numba kernel: an infinite dy where the ReLU clipped gives 0
// (the reference's product dy * mask gives NaN there). Sums are kept in double.
// Must equal, to float rounding: batch_norm_backward_numpy in minigrad/ops/norm.py (which sums in
// T and in another order). CPU reference: batch_norm_backward_cpu_f32 / _f64 below play each block
// on the host with the SAME per-thread functions. Entry points: batch_norm_backward_f32, _f64.
#include "batchnorm.cuh"

// dy on its way back through the fused ReLU: 0 where its output z was not > 0 (a NaN z included).
template <typename T>
__host__ __device__ inline double through_relu(const T* dy, const T* relu_out, index_t k, const BatchNormShape& s) {
    return (s.relu && !(relu_out[k] > T(0))) ? 0.0 : (double)dy[k];
}

// Thread t's shares of sum g and sum g xhat over channel c.
template <typename T>
__host__ __device__ void share_of_sums(const T* x, const T* dy, const T* relu_out, const BatchNormShape& s,
                                       index_t c, int t, double mu, double inv_std,
                                       double* sum_g, double* sum_g_xhat) {
    double g_total = 0.0, g_xhat_total = 0.0;
    for (ChannelWalk w(s, t); w.inside(s); w.next(s)) {
        index_t k = w.at(s, c);
        double g = through_relu(dy, relu_out, k, s);
        g_total += g;
        g_xhat_total += g * (((double)x[k] - mu) * inv_std);
    }
    *sum_g = g_total;
    *sum_g_xhat = g_xhat_total;
}

// Thread t writes its share of dx = gamma s (g - dbeta/M - xhat dgamma/M).
template <typename T>
__host__ __device__ void dx_share(const T* x, const T* dy, const T* relu_out, T* dx, const BatchNormShape& s,
                                  index_t c, int t, double mu, double inv_std, double gamma,
                                  double dgamma, double dbeta) {
    double count = (double)(s.batch * s.per_image);                   // M
    double scale = gamma * inv_std;
    double dbeta_share = dbeta / count, dgamma_share = dgamma / count;
    for (ChannelWalk w(s, t); w.inside(s); w.next(s)) {
        index_t k = w.at(s, c);
        double xhat = ((double)x[k] - mu) * inv_std;
        dx[k] = (T)(scale * (through_relu(dy, relu_out, k, s) - dbeta_share - xhat * dgamma_share));
    }
}

template <typename T>
__device__ void batch_norm_backward_block(const T* x, const T* dy, T* dx, const double* mean,
                                          const double* inv_std, const T* gamma, double* dgamma, double* dbeta,
                                          const T* relu_out, const BatchNormShape& s) {
    __shared__ double partial[BN_THREADS];
    index_t c = blockIdx.x;
    int t = threadIdx.x;
    double mine_g, mine_g_xhat;
    share_of_sums(x, dy, relu_out, s, c, t, mean[c], inv_std[c], &mine_g, &mine_g_xhat);
    double sum_g = block_sum(partial, mine_g);                        // dbeta
    double sum_g_xhat = block_sum(partial, mine_g_xhat);              // dgamma
    if (t == 0) {
        dbeta[c] = sum_g;
        dgamma[c] = sum_g_xhat;
    }
    dx_share(x, dy, relu_out, dx, s, c, t, mean[c], inv_std[c], (double)gamma[c], sum_g_xhat, sum_g);
}

extern "C" __global__ void batch_norm_backward_f32(const float* x, const float* dy, float* dx, const double* mean,
                                                   const double* inv_std, const float* gamma, double* dgamma,
                                                   double* dbeta, const float* relu_out, BatchNormShape s) {
    batch_norm_backward_block<float>(x, dy, dx, mean, inv_std, gamma, dgamma, dbeta, relu_out, s);
}

extern "C" __global__ void batch_norm_backward_f64(const double* x, const double* dy, double* dx, const double* mean,
                                                   const double* inv_std, const double* gamma, double* dgamma,
                                                   double* dbeta, const double* relu_out, BatchNormShape s) {
    batch_norm_backward_block<double>(x, dy, dx, mean, inv_std, gamma, dgamma, dbeta, relu_out, s);
}

#ifndef __CUDACC_RTC__   // host code: compiled by nvcc for the tests, never by NVRTC
template <typename T>
static void batch_norm_backward_cpu(const T* x, const T* dy, T* dx, const double* mean, const double* inv_std,
                                    const T* gamma, double* dgamma, double* dbeta, const T* relu_out,
                                    const BatchNormShape* s) {
    double partial_g[BN_THREADS], partial_g_xhat[BN_THREADS];
    for (index_t c = 0; c < s->channels; ++c) {                       // block c, thread by thread
        for (int t = 0; t < BN_THREADS; ++t)
            share_of_sums(x, dy, relu_out, *s, c, t, mean[c], inv_std[c], &partial_g[t], &partial_g_xhat[t]);
        dbeta[c] = block_sum_in_turn(partial_g);
        dgamma[c] = block_sum_in_turn(partial_g_xhat);
        for (int t = 0; t < BN_THREADS; ++t)
            dx_share(x, dy, relu_out, dx, *s, c, t, mean[c], inv_std[c], (double)gamma[c], dgamma[c], dbeta[c]);
    }
}

extern "C" void batch_norm_backward_cpu_f32(const float* x, const float* dy, float* dx, const double* mean,
                                            const double* inv_std, const float* gamma, double* dgamma,
                                            double* dbeta, const float* relu_out, const BatchNormShape* s) {
    batch_norm_backward_cpu(x, dy, dx, mean, inv_std, gamma, dgamma, dbeta, relu_out, s);
}
extern "C" void batch_norm_backward_cpu_f64(const double* x, const double* dy, double* dx, const double* mean,
                                            const double* inv_std, const double* gamma, double* dgamma,
                                            double* dbeta, const double* relu_out, const BatchNormShape* s) {
    batch_norm_backward_cpu(x, dy, dx, mean, inv_std, gamma, dgamma, dbeta, relu_out, s);
}
#endif
