// kernels/ know nothing of the harness.
#include <attnbench/host/config.hpp>
