// batchnorm_forward.cu: batch normalisation in training mode, forward, with an optional fused ReLU,
// in ONE launch: one block per channel (batchnorm.cuh says how the block shares the channel).
//
//   x, y              (N, C, P)  C-contiguous, float32 or float64 (the caller reshapes (N, C, H, W))
//   gamma, beta       (C,)       in x's dtype
//   mean, var, inv_std (C,)      float64 results
//
// Block c, over the channel's M = N P values (minigrad/ops/norm.py derives the maths):
//
//   mu      = sum x / M                              block sum 1
//   var     = sum (x - mu)^2 / M                     block sum 2: two passes, no cancellation;
//                                                    the biased variance, which normalises
//   s       = 1 / sqrt(var + eps)                    inv_std
//   y       = (x - mu) s gamma + beta                in double, rounded once to T
//   y       = 0 if y <= 0 else y                     with relu (a NaN stays NaN, as numpy.maximum)
//
// Sums are kept in double. The running statistics (running_var takes the unbiased var * M/(M-1))
// are updated by the op, BatchNorm._update_running_stats, from mean and var.
// Must equal, to float rounding: batch_norm_train_forward_numpy in minigrad/ops/norm.py (which
// sums in T and in another order). CPU reference: batch_norm_forward_cpu_f32 / _f64 below play
// each block on the host with the SAME per-thread functions. Entry points: batch_norm_forward_f32, _f64.
#include "batchnorm.cuh"

// Thread t's share of sum x over channel c.
template <typename T>
__host__ __device__ double share_of_sum(const T* x, const BatchNormShape& s, index_t c, int t) {
    double total = 0.0;
    for (ChannelWalk w(s, t); w.inside(s); w.next(s)) total += (double)x[w.at(s, c)];
    return total;
}

// Thread t's share of sum (x - mu)^2 over channel c.
template <typename T>
__host__ __device__ double share_of_squares(const T* x, const BatchNormShape& s, index_t c, int t, double mu) {
    double total = 0.0;
    for (ChannelWalk w(s, t); w.inside(s); w.next(s)) {
        double centred = (double)x[w.at(s, c)] - mu;
        total += centred * centred;
    }
    return total;
}

// Thread t writes its share of y: y = (x - mu) scale + beta, scale = gamma s, then the ReLU.
template <typename T>
__host__ __device__ void normalise_share(const T* x, T* y, const BatchNormShape& s, index_t c, int t,
                                         double mu, double scale, double beta) {
    for (ChannelWalk w(s, t); w.inside(s); w.next(s)) {
        index_t k = w.at(s, c);
        T value = (T)(((double)x[k] - mu) * scale + beta);
        y[k] = (s.relu && value <= T(0)) ? T(0) : value;
    }
}

// mu = sum x / M, from the channel's first block sum.
__host__ __device__ inline double channel_mean(double sum, const BatchNormShape& s) {
    return sum / (double)(s.batch * s.per_image);
}

// The channel's statistics from its two sums: mu, the biased var, and inv_std = 1 / sqrt(var + eps).
struct ChannelStatistics { double mean, var, inv_std; };

__host__ __device__ inline ChannelStatistics channel_statistics(double sum, double squares, const BatchNormShape& s) {
    ChannelStatistics stats;
    stats.mean = channel_mean(sum, s);
    stats.var = squares / (double)(s.batch * s.per_image);
    stats.inv_std = 1.0 / root<double>(stats.var + s.eps);
    return stats;
}

template <typename T>
__device__ void batch_norm_forward_block(const T* x, T* y, const T* gamma, const T* beta,
                                         double* mean, double* var, double* inv_std, const BatchNormShape& s) {
    __shared__ double partial[BN_THREADS];
    index_t c = blockIdx.x;
    int t = threadIdx.x;
    double sum = block_sum(partial, share_of_sum(x, s, c, t));
    double squares = block_sum(partial, share_of_squares(x, s, c, t, channel_mean(sum, s)));
    ChannelStatistics stats = channel_statistics(sum, squares, s);   // in every thread
    if (t == 0) {
        mean[c] = stats.mean;
        var[c] = stats.var;
        inv_std[c] = stats.inv_std;
    }
    normalise_share(x, y, s, c, t, stats.mean, (double)gamma[c] * stats.inv_std, (double)beta[c]);
}

extern "C" __global__ void batch_norm_forward_f32(const float* x, float* y, const float* gamma, const float* beta,
                                                  double* mean, double* var, double* inv_std, BatchNormShape s) {
    batch_norm_forward_block<float>(x, y, gamma, beta, mean, var, inv_std, s);
}

extern "C" __global__ void batch_norm_forward_f64(const double* x, double* y, const double* gamma,
                                                  const double* beta, double* mean, double* var, double* inv_std,
                                                  BatchNormShape s) {
    batch_norm_forward_block<double>(x, y, gamma, beta, mean, var, inv_std, s);
}

#ifndef __CUDACC_RTC__   // host code: compiled by nvcc for the tests, never by NVRTC
template <typename T>
static void batch_norm_forward_cpu(const T* x, T* y, const T* gamma, const T* beta,
                                   double* mean, double* var, double* inv_std, const BatchNormShape* s) {
    double partial[BN_THREADS];
    for (index_t c = 0; c < s->channels; ++c) {                       // block c, thread by thread
        for (int t = 0; t < BN_THREADS; ++t) partial[t] = share_of_sum(x, *s, c, t);
        double sum = block_sum_in_turn(partial);
        for (int t = 0; t < BN_THREADS; ++t) partial[t] = share_of_squares(x, *s, c, t, channel_mean(sum, *s));
        ChannelStatistics stats = channel_statistics(sum, block_sum_in_turn(partial), *s);
        mean[c] = stats.mean;
        var[c] = stats.var;
        inv_std[c] = stats.inv_std;
        for (int t = 0; t < BN_THREADS; ++t)
            normalise_share(x, y, *s, c, t, stats.mean, (double)gamma[c] * stats.inv_std, (double)beta[c]);
    }
}

extern "C" void batch_norm_forward_cpu_f32(const float* x, float* y, const float* gamma, const float* beta,
                                           double* mean, double* var, double* inv_std, const BatchNormShape* s) {
    batch_norm_forward_cpu(x, y, gamma, beta, mean, var, inv_std, s);
}
extern "C" void batch_norm_forward_cpu_f64(const double* x, double* y, const double* gamma, const double* beta,
                                           double* mean, double* var, double* inv_std, const BatchNormShape* s) {
    batch_norm_forward_cpu(x, y, gamma, beta, mean, var, inv_std, s);
}
#endif
