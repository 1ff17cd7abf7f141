/* Plain-C test and benchmark interface of the scales_edge kernels, exported by
 * libscales_edge_ops.so next to RegisterCustomOps. Meant for ctypes (tests, benchmarks), not for
 * production use: the ONNX Runtime custom ops are the product.
 *
 * Every function taking `path` accepts "portable", "avx2", "avx512", "neon", "auto", or NULL/"" for the
 * default choice: SCALES_EDGE_KERNEL if it names a path, else "auto": the convolution and matmul
 * functions then measure the supported paths on their geometry (as the ONNX Runtime ops do), the
 * packing functions use the newest supported path (every path packs the same bits). Functions returning int
 * return 0 on success and 1 on error, writing a NUL-terminated message into err[0..err_cap) when
 * err is non-null. Arrays are dense, C order. Everything runs on the calling thread. */
#ifndef SCALES_EDGE_KERNELS_C_API_H_
#define SCALES_EDGE_KERNELS_C_API_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define SCALES_EDGE_EXPORT __declspec(dllexport)
#else
#define SCALES_EDGE_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Comma-separated paths the CPU supports, slowest first, e.g. "portable,avx2". */
SCALES_EDGE_EXPORT const char* scales_edge_kernel_paths(void);
/* Comma-separated paths compiled into this library, e.g. "portable,avx2,avx512". */
SCALES_EDGE_EXPORT const char* scales_edge_kernel_paths_compiled(void);
/* Resolves `path` (see above; reads SCALES_EDGE_KERNEL at every call) and writes the chosen
 * path's name, or "auto" when the choice is measured per op and geometry, into
 * name[0..name_cap). */
SCALES_EDGE_EXPORT int scales_edge_kernel_resolve(const char* path, char* name, size_t name_cap,
                                                  char* err, size_t err_cap);
/* The kernel path each op node chose, as a JSON array in the order the choices were made: one
 * object per node and geometry, {"op", "node", "shape", "path", "how" (forced | only | measured |
 * cached | budget), "unit_ms": {path: measured ms per work unit}}. Writes at most cap - 1 bytes
 * and a NUL into buf (if non-null) and returns the full length. Defined by the ONNX Runtime
 * layer (ops/ort/paths.cc), so only in libscales_edge_ops.so. */
SCALES_EDGE_EXPORT size_t scales_edge_kernel_choices(char* buf, size_t cap);
/* ORT C API version negotiated by RegisterCustomOps (0 before the first registration).
 * Defined by the ONNX Runtime layer (ops/ort/register.cc), so only in libscales_edge_ops.so. */
SCALES_EDGE_EXPORT int scales_edge_ort_api_version(void);

/* Binarize+pack X [N, C, H, W] (float) with beta [C] into out [N, H, W, ceil(C/64)]. */
SCALES_EDGE_EXPORT int scales_edge_pack_nchw(const char* path, const float* x, const float* beta,
                                             int64_t n, int64_t c, int64_t h, int64_t w,
                                             uint64_t* out, char* err, size_t err_cap);
/* Binarize+pack X [rows, K] with beta [K] into out [rows, ceil(K/64)]. */
SCALES_EDGE_EXPORT int scales_edge_pack_rows(const char* path, const float* x, const float* beta,
                                             int64_t rows, int64_t k, uint64_t* out, char* err,
                                             size_t err_cap);
/* Output size of a binary convolution (0 on success). */
SCALES_EDGE_EXPORT int scales_edge_conv_output_size(int64_t h, int64_t w, int64_t kh, int64_t kw,
                                                    const int64_t* strides /*[2]*/,
                                                    const int64_t* pads /*[4]*/,
                                                    const int64_t* dilations /*[2]*/,
                                                    int64_t* oh, int64_t* ow, char* err,
                                                    size_t err_cap);
/* Binary convolution accumulators: xp = packed input [N, H, W, ceil(C/64)], wp = packed weights
 * [M, kH, kW, ceil(C/64)]; acc = int32 [N, M, OH, OW]. strides [sH, sW], pads [top, left, bottom,
 * right], dilations [dH, dW]. */
SCALES_EDGE_EXPORT int scales_edge_bconv_int32(const char* path, const uint64_t* xp, int64_t n,
                                               int64_t c, int64_t h, int64_t w,
                                               const uint64_t* wp, int64_t m, int64_t kh,
                                               int64_t kw, const int64_t* strides,
                                               const int64_t* pads, const int64_t* dilations,
                                               int32_t* acc, char* err, size_t err_cap);
/* Binary matmul accumulators: xp [rows, ceil(K/64)], wp [M, ceil(K/64)]; acc = int32 [rows, M]. */
SCALES_EDGE_EXPORT int scales_edge_bgemm_int32(const char* path, const uint64_t* xp, int64_t rows,
                                               int64_t k, const uint64_t* wp, int64_t m,
                                               int32_t* acc, char* err, size_t err_cap);
/* Whole BinaryConv2d on one thread (pack, convolve, scale+bias): x [N, C, H, W] float, beta [C],
 * wp [M, kH, kW, ceil(C/64)], scale [M], bias [M] or NULL; y = float [N, M, OH, OW]. For
 * benchmarks: `repeat` runs the convolution that many times (>= 1). */
SCALES_EDGE_EXPORT int scales_edge_binary_conv2d(const char* path, const float* x,
                                                 const float* beta, int64_t n, int64_t c,
                                                 int64_t h, int64_t w, const uint64_t* wp,
                                                 int64_t m, int64_t kh, int64_t kw,
                                                 const int64_t* strides, const int64_t* pads,
                                                 const int64_t* dilations, const float* scale,
                                                 const float* bias, float* y, int repeat,
                                                 char* err, size_t err_cap);

#ifdef __cplusplus
}
#endif

#endif /* SCALES_EDGE_KERNELS_C_API_H_ */
