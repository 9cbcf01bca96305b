// SHRINK_HD marks a function usable from host and CUDA device code (inlined on both).
#pragma once

#ifndef SHRINK_HD
#if defined(__CUDACC__)
#define SHRINK_HD __host__ __device__ __forceinline__
#else
#define SHRINK_HD inline
#endif
#endif
