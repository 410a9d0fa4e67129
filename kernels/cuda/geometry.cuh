// geometry.cuh: the sliding-window geometry shared by every kernel in this folder.
//
// The 14 ints, in this order, are kernels/geometry.py's FIELDS: the Python side passes
// them by value to CuPy as a one-element NumPy array of GEOMETRY_DTYPE, or by pointer
// from ctypes to the CPU references. Output size along one axis:
//
//     OH = (H + 2 PH - DH (KH - 1) - 1) / SH + 1
//
// This header is pasted into each .cu by minigrad/fast/gpu.py before NVRTC compiles
// it (NVRTC has no file system of its own); nvcc finds it next to the .cu as usual.
#ifndef MINIGRAD_GEOMETRY_CUH
#define MINIGRAD_GEOMETRY_CUH

struct Geometry {
    int batch, channels, height, width;   // N, C, H, W
    int kernel_h, kernel_w;               // KH, KW
    int stride_h, stride_w;               // SH, SW
    int pad_h, pad_w;                     // PH, PW
    int dilation_h, dilation_w;           // DH, DW
    int out_h, out_w;                     // OH, OW
};

// Flat indices can pass 2^31 (C*KH*KW * N*OH*OW): they are 64-bit everywhere.
typedef long long index_t;

// Which output position oh reads input row h through window row kh?
//     h = oh * SH - PH + kh * DH   <=>   oh = (h + PH - kh * DH) / SH, when that divides exactly.
// Returns -1 when no output position does (not divisible, or outside [0, out)).
__host__ __device__ inline int output_reading(int h, int k, int stride, int pad, int dilation, int out) {
    int shifted = h + pad - k * dilation;
    if (shifted < 0 || shifted % stride != 0) return -1;
    int o = shifted / stride;
    return o < out ? o : -1;
}

#endif  // MINIGRAD_GEOMETRY_CUH
