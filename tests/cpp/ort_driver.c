/* ort_driver: run one ONNX model through ONNX Runtime's C API with a custom-op library registered,
 * in plain C (glibc only), so that it can be built against an old distribution's root and run in
 * that userland: tests/test_wheels.py runs it with Debian 11's dynamic loader, glibc and libstdc++
 * (x86-64) and under qemu-aarch64, to show the op library of a built wheel loads and computes there.
 *
 *   ort_driver LIBONNXRUNTIME OPS_LIB MODEL INPUT.f32 N C H W OUTPUT.f32
 *
 * INPUT.f32 holds N*C*H*W float32 values (the model's first input); the first output is written to
 * OUTPUT.f32 as raw float32 and its shape printed on stdout ("shape 1 3 92 124"). Any failure: one
 * line on stderr, exit code 1. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "onnxruntime_c_api.h"

static const OrtApi* api;

static void die(const char* what, const char* why) {
  fprintf(stderr, "ort_driver: %s: %s\n", what, why ? why : "?");
  exit(1);
}

static void check(OrtStatus* status, const char* what) {
  if (status != NULL) die(what, api->GetErrorMessage(status));
}

int main(int argc, char** argv) {
  if (argc != 10) die("usage", "ort_driver LIBONNXRUNTIME OPS_LIB MODEL INPUT.f32 N C H W OUTPUT.f32");
  void* ort = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (ort == NULL) die(argv[1], dlerror());
  const OrtApiBase* (*get_base)(void) = (const OrtApiBase* (*)(void))dlsym(ort, "OrtGetApiBase");
  if (get_base == NULL) die(argv[1], "no OrtGetApiBase");
  api = get_base()->GetApi(ORT_API_VERSION);
  if (api == NULL) die(argv[1], "does not provide the API version of these headers");

  int64_t shape[4];
  size_t count = 1;
  for (int i = 0; i < 4; ++i) {
    shape[i] = strtoll(argv[5 + i], NULL, 10);
    if (shape[i] < 1) die("shape", argv[5 + i]);
    count *= (size_t)shape[i];
  }
  float* input = malloc(count * sizeof(float));
  FILE* f = fopen(argv[4], "rb");
  if (input == NULL || f == NULL || fread(input, sizeof(float), count, f) != count) die(argv[4], "cannot read the input");
  fclose(f);

  OrtEnv* env;
  OrtSessionOptions* options;
  OrtSession* session;
  check(api->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "ort_driver", &env), "CreateEnv");
  check(api->CreateSessionOptions(&options), "CreateSessionOptions");
  check(api->SetIntraOpNumThreads(options, 1), "SetIntraOpNumThreads");
  check(api->RegisterCustomOpsLibrary_V2(options, argv[2]), "RegisterCustomOpsLibrary_V2");
  check(api->CreateSession(env, argv[3], options, &session), "CreateSession");

  OrtAllocator* allocator;
  char* input_name;
  char* output_name;
  check(api->GetAllocatorWithDefaultOptions(&allocator), "GetAllocatorWithDefaultOptions");
  check(api->SessionGetInputName(session, 0, allocator, &input_name), "SessionGetInputName");
  check(api->SessionGetOutputName(session, 0, allocator, &output_name), "SessionGetOutputName");

  OrtMemoryInfo* memory;
  OrtValue* x = NULL;
  OrtValue* y = NULL;
  check(api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &memory), "CreateCpuMemoryInfo");
  check(api->CreateTensorWithDataAsOrtValue(memory, input, count * sizeof(float), shape, 4,
                                            ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &x),
        "CreateTensorWithDataAsOrtValue");
  const char* in_names[1] = {input_name};
  const char* out_names[1] = {output_name};
  check(api->Run(session, NULL, in_names, (const OrtValue* const*)&x, 1, out_names, 1, &y), "Run");

  OrtTensorTypeAndShapeInfo* info;
  size_t dims = 0, n = 0;
  int64_t out_shape[8];
  float* out;
  check(api->GetTensorTypeAndShape(y, &info), "GetTensorTypeAndShape");
  check(api->GetDimensionsCount(info, &dims), "GetDimensionsCount");
  if (dims > 8) die("output", "more than 8 dimensions");
  check(api->GetDimensions(info, out_shape, dims), "GetDimensions");
  check(api->GetTensorShapeElementCount(info, &n), "GetTensorShapeElementCount");
  check(api->GetTensorMutableData(y, (void**)&out), "GetTensorMutableData");
  f = fopen(argv[9], "wb");
  if (f == NULL || fwrite(out, sizeof(float), n, f) != n || fclose(f) != 0) die(argv[9], "cannot write the output");
  printf("shape");
  for (size_t i = 0; i < dims; ++i) printf(" %lld", (long long)out_shape[i]);
  printf("\n");

  api->ReleaseTensorTypeAndShapeInfo(info);
  api->ReleaseValue(y);
  api->ReleaseValue(x);
  api->ReleaseMemoryInfo(memory);
  check(api->AllocatorFree(allocator, input_name), "AllocatorFree");
  check(api->AllocatorFree(allocator, output_name), "AllocatorFree");
  api->ReleaseSession(session);
  api->ReleaseSessionOptions(options);
  api->ReleaseEnv(env);
  free(input);
  return 0;
}
