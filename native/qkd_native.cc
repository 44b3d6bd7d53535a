// qkd_native: the matrix products of qkd's `native` backend, through OpenBLAS's cblas_sgemm.
//
// A Node-API addon (plain C API, no node-addon-api), built by scripts/build.mjs with g++ into
// dist/native/qkd_native.node and linked against the system OpenBLAS (Debian: libopenblas-dev).
// Exports (all synchronous, on the caller's thread plus OpenBLAS's own threads):
//   sgemm(C, A, B, M, N, K, transA, transB, accumulate)
//       C (M,N) = op(A) (M,K) · op(B) (K,N), or C += ... when accumulate. transA: A is stored (K,M);
//       transB: B is stored (N,K). Row-major, contiguous.
//   sgemmBatched(C, A, B, batch, M, N, K, transA, transB, accumulate)
//       `batch` independent products over contiguous blocks (A (batch,M,K), ...).
//   setThreads(n), getThreads() -> n      OpenBLAS's thread count (openblas_set_num_threads).
//   info() -> { config, corename, threads }
// C, A and B are Float32Arrays; views of a SharedArrayBuffer (the wasm backend's WebAssembly.Memory)
// work too: napi_get_typedarray_info's data pointer already includes the view's byte offset. The
// TypeScript side checks shapes with named errors first; the checks here only keep a wrong call from
// reading or writing outside the arrays.
#define NAPI_VERSION 8
#include <node_api.h>
#include <cblas.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

// OpenBLAS extensions, declared here as well: the system cblas.h may come from another BLAS.
extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
char* openblas_get_corename(void);
}

namespace {

// A thrown JS error leaves a pending exception; every function returns nullptr right after one.
bool Fail(napi_env env, const char* fn, const char* msg) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "qkd_native %s: %s", fn, msg);
  napi_throw_range_error(env, "E_SHAPE", buf);
  return false;
}

// Fills argv[0..cap) (missing ones read as undefined); at least `need` must be given.
bool GetArgs(napi_env env, napi_callback_info info, size_t cap, size_t need, napi_value* argv, const char* fn) {
  size_t argc = cap;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return Fail(env, fn, "bad call");
  if (argc < need) return Fail(env, fn, "too few arguments");
  return true;
}

// A non-negative integer argument (shape); doubles so that shapes above 2^31 are caught, not wrapped.
bool GetDim(napi_env env, napi_value v, const char* fn, const char* name, int64_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0) || d > 2147483647.0 || d != static_cast<int64_t>(d)) {
    char msg[96];
    std::snprintf(msg, sizeof msg, "%s must be an integer in [0, 2^31)", name);
    return Fail(env, fn, msg);
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool GetFlag(napi_env env, napi_value v, bool* out) {
  bool b = false;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) == napi_ok && t == napi_boolean) napi_get_value_bool(env, v, &b);
  *out = b;  // undefined (an omitted optional flag) reads as false
  return true;
}

// The float data of a Float32Array with at least `need` elements (a double: batch·M·N may pass 2^63).
bool GetF32(napi_env env, napi_value v, double need, const char* fn, const char* name, float** out) {
  bool is = false;
  napi_typedarray_type type;
  size_t len = 0;
  void* data = nullptr;
  char msg[128];
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, &len, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array) {
    std::snprintf(msg, sizeof msg, "%s must be a Float32Array", name);
    return Fail(env, fn, msg);
  }
  if (static_cast<double>(len) < need) {
    std::snprintf(msg, sizeof msg, "%s has %zu elements, the shapes need %.0f", name, len, need);
    return Fail(env, fn, msg);
  }
  *out = static_cast<float*>(data);
  return true;
}

constexpr double kSmallItem = 4.0 * 1024 * 1024;

// One product; lda/ldb are at least 1 as cblas requires (they only matter when K, M or N is 0).
void Gemm(float* C, const float* A, const float* B, int64_t M, int64_t N, int64_t K, bool tA, bool tB, bool acc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // C = 0 · C (+ nothing): cblas would reject lda = 0 for row-major A (M,0)
    if (!acc) std::memset(C, 0, sizeof(float) * static_cast<size_t>(M * N));
    return;
  }
  const int lda = static_cast<int>(tA ? M : K), ldb = static_cast<int>(tB ? K : N);
  cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), 1.0f, A, lda, B, ldb,
              acc ? 1.0f : 0.0f, C, static_cast<int>(N));
}

// Reads (C, A, B, [batch,] M, N, K, transA, transB, accumulate) and runs the product(s).
napi_value GemmCall(napi_env env, napi_callback_info info, bool batched) {
  const char* fn = batched ? "sgemmBatched" : "sgemm";
  const size_t nargs = batched ? 10 : 9;
  napi_value argv[10];
  const size_t d = batched ? 4 : 3;  // index of M; the three flags after K are optional
  if (!GetArgs(env, info, nargs, d + 3, argv, fn)) return nullptr;
  int64_t batch = 1, M, N, K;
  if (batched && !GetDim(env, argv[3], fn, "batch", &batch)) return nullptr;
  if (!GetDim(env, argv[d], fn, "M", &M) || !GetDim(env, argv[d + 1], fn, "N", &N) ||
      !GetDim(env, argv[d + 2], fn, "K", &K)) return nullptr;
  bool tA, tB, acc;
  GetFlag(env, argv[d + 3], &tA); GetFlag(env, argv[d + 4], &tB); GetFlag(env, argv[d + 5], &acc);
  float *C, *A, *B;
  const double b = static_cast<double>(batch);
  if (!GetF32(env, argv[0], b * M * N, fn, "C", &C) || !GetF32(env, argv[1], b * M * K, fn, "A", &A) ||
      !GetF32(env, argv[2], b * K * N, fn, "B", &B)) return nullptr;
  // Items below kSmallItem multiply-adds (attention heads: 256x128x32 = 1M) run on one OpenBLAS thread:
  // its per-call split would wake a worker for ~20 µs of work each time (measured: 2 threads 1.2-1.3x
  // slower than 1 on the training step's attention products).
  const int threads = openblas_get_num_threads();
  const bool single = batch > 1 && threads > 1 && static_cast<double>(M) * N * K < kSmallItem;
  if (single) openblas_set_num_threads(1);
  for (int64_t i = 0; i < batch; i++) Gemm(C + i * M * N, A + i * M * K, B + i * K * N, M, N, K, tA, tB, acc);
  if (single) openblas_set_num_threads(threads);
  return nullptr;
}

napi_value Sgemm(napi_env env, napi_callback_info info) { return GemmCall(env, info, false); }
napi_value SgemmBatched(napi_env env, napi_callback_info info) { return GemmCall(env, info, true); }

napi_value SetThreads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t n;
  if (!GetArgs(env, info, 1, 1, argv, "setThreads") || !GetDim(env, argv[0], "setThreads", "n", &n)) return nullptr;
  openblas_set_num_threads(n < 1 ? 1 : static_cast<int>(n));
  return nullptr;
}

napi_value GetThreads(napi_env env, napi_callback_info) {
  napi_value out;
  napi_create_int32(env, openblas_get_num_threads(), &out);
  return out;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, config, corename, threads;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &config);
  napi_create_string_utf8(env, openblas_get_corename(), NAPI_AUTO_LENGTH, &corename);
  napi_create_int32(env, openblas_get_num_threads(), &threads);
  napi_set_named_property(env, obj, "config", config);
  napi_set_named_property(env, obj, "corename", corename);
  napi_set_named_property(env, obj, "threads", threads);
  return obj;
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
    {"sgemm", nullptr, Sgemm, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"sgemmBatched", nullptr, SgemmBatched, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"getThreads", nullptr, GetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

}  // namespace

NAPI_MODULE(qkd_native, Init)
