// The thread-local error message of the C API, and the device count.
#include "common.cuh"

namespace attnbench::cuda {
namespace {
thread_local std::string g_error;
}
void set_error(std::string message) { g_error = std::move(message); }
}  // namespace attnbench::cuda

extern "C" const char* attnbench_cuda_last_error(void) { return attnbench::cuda::g_error.c_str(); }

extern "C" int attnbench_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free "no device" error
    return 0;
  }
  return n;
}
