// batchnorm.cuh: what the batch-norm kernels share (batchnorm_forward.cu, batchnorm_backward.cu).
//
// One block of BN_THREADS threads owns ONE channel c, whose M = N * P values (P = M/N per image)
// lie in N rows of P: value j is x[n, c, i] with n = j / P, i = j % P. Thread t takes the values
// j = t, t + BN_THREADS, t + 2 BN_THREADS, ... < M (neighbouring threads read neighbouring
// numbers), and adds its share in double. The block then adds the BN_THREADS partial sums in a
// tree: at width w = BN_THREADS/2, BN_THREADS/4, ..., 1, every thread t < w adds partial[t + w]
// into partial[t]; partial[0] is the channel's sum.
//
// The CPU references play the block on the host: every thread's share in turn, then every level
// of the tree in turn, so they add the same numbers in the same order as the GPU.
// Pasted into each .cu by minigrad/fast/gpu.py before NVRTC compiles it, like geometry.cuh.
#ifndef MINIGRAD_BATCHNORM_CUH
#define MINIGRAD_BATCHNORM_CUH
// step_math.cuh: index_t (from geometry.cuh) and root, a square root rounded once.
#include "step_math.cuh"

// Threads per block, one block per channel: a power of 2 for the tree. minigrad/fast/gpu_batchnorm.py
// launches THREADS_PER_CHANNEL threads, which must equal it (a test reads both).
#define BN_THREADS 256

struct BatchNormShape {          // all 8-byte fields: the same layout in C and in NumPy's structured dtype
    long long batch, channels, per_image;   // N, C, P = M/N
    double eps;
    long long relu;                         // 1: z = max(y, 0) fused (batch_norm_relu)
};

// One thread's share of a channel, as (image n, position i), stepping by BN_THREADS values without
// a division per value: BN_THREADS = (BN_THREADS / P) whole images + (BN_THREADS % P) positions.
struct ChannelWalk {
    index_t n, i;                // the current value j = n P + i; j < M exactly while n < N
    index_t step_n, step_i;
    __host__ __device__ ChannelWalk(const BatchNormShape& s, int t)
        : n(t / s.per_image), i(t % s.per_image), step_n(BN_THREADS / s.per_image),
          step_i(BN_THREADS % s.per_image) {}
    __host__ __device__ bool inside(const BatchNormShape& s) const { return n < s.batch; }
    __host__ __device__ index_t at(const BatchNormShape& s, index_t c) const {
        return (n * s.channels + c) * s.per_image + i;               // flat index of x[n, c, i]
    }
    __host__ __device__ void next(const BatchNormShape& s) {
        n += step_n;
        i += step_i;
        if (i >= s.per_image) { i -= s.per_image; ++n; }
    }
};

// One level of the tree: thread t (< width) adds partial[t + width] into partial[t].
__host__ __device__ inline void tree_level(double* partial, int t, int width) {
    if (t < width) partial[t] += partial[t + width];
}

// The sum of the block's `mine`s, in every thread. partial: BN_THREADS doubles of shared memory.
__device__ inline double block_sum(double* partial, double mine) {
    partial[threadIdx.x] = mine;
    __syncthreads();
    for (int width = BN_THREADS / 2; width > 0; width /= 2) {
        tree_level(partial, threadIdx.x, width);
        __syncthreads();
    }
    double total = partial[0];
    __syncthreads();                                                  // partial is reused by the next sum
    return total;
}

#ifndef __CUDACC_RTC__   // host code: compiled by nvcc for the tests, never by NVRTC
// block_sum played on the host: partial[t] holds thread t's share; every level of the tree in turn.
static inline double block_sum_in_turn(double* partial) {
    for (int width = BN_THREADS / 2; width > 0; width /= 2)
        for (int t = 0; t < width; ++t) tree_level(partial, t, width);
    return partial[0];
}
#endif

#endif  // MINIGRAD_BATCHNORM_CUH
