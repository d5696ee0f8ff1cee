// The python policy's bridge to the interpreter: starting it (or joining the one that
// runs the host), loading the user's module, numpy views of the host's inputs for the
// length of one call, plans from what Python returns, and Python errors as messages that
// name the file and line.
#pragma once

#include <attnbench/plugin.h>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace attnbench::python_policy {

namespace py = pybind11;

// Starts the interpreter once per process, or joins the one already running when the
// host is Python itself, and leaves the GIL free for whichever thread calls next.
void ensure_interpreter();

// types.SimpleNamespace, looked up once; requests and the model are namespaces. The
// GIL must be held.
const py::object& simple_namespace();

// "FILE:LINE in FUNCTION: Type: message" for a Python exception: the innermost frame in
// user_file (the policy's module), with the innermost of all when that is elsewhere; for a
// SyntaxError, the line that failed to parse. The GIL must be held.
std::string describe(const py::error_already_set& e, const std::string& user_file = "");

// The user's module: a path to a .py file (relative to the working directory) or a
// module name importable from sys.path plus `extra_path`. A file is executed once per
// process and shared by every instance.
py::object load_module(const std::string& module, const std::vector<std::string>& extra_path);

// A namespace with the model's shape: n_layers, n_query_heads, n_kv_heads, head_dim,
// block_size, dtype ("fp32", "fp16" or "bf16").
py::object model_namespace(const attnbench_model_info& m);

// Read-only numpy views over host memory for the length of one call. Copies nothing; a
// block list (key_blocks(), value_blocks()) is made only when Python asks for it, and
// refuses once the call has returned (the host's memory may be gone by then); a view
// still held after the call fails it (check_released).
class call_views {
 public:
  call_views();
  call_views(const call_views&) = delete;
  call_views& operator=(const call_views&) = delete;
  ~call_views();
  // After the call, once the request is released: throws std::runtime_error when the
  // policy still holds one of the views (the host's memory changes after the call).
  void check_released();

  // [rows, cols] float32 over data.
  py::array floats(const float* data, py::ssize_t rows, py::ssize_t cols);
  // One namespace per KV head of the layer (see plugins/python/README.md for the fields).
  py::list layer(const attnbench_kv_layer_view& kv);

 private:
  py::object head(const attnbench_kv_layer_view& kv, std::uint32_t h);
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::vector<py::object> views_;  // every array made for this call
  std::vector<py::object>* previous_ = nullptr;
};

// A plan or keep set built from a Python result, owning its index arrays until the next
// fill. Python returns None (every head visits everything) or one item per KV head (or,
// for a plan, per query head): None (all), an array of token indices, or
// ("blocks", array) / ("tokens", array). A keep set's token indices are sorted here.
class plan_buffer {
 public:
  attnbench_plan fill(py::handle result, const attnbench_kv_layer_view& kv, std::uint32_t n_query_heads,
                      bool keep_set);

 private:
  attnbench_plan_entry entry(py::handle item, bool keep_set, std::size_t slot);
  std::vector<std::vector<std::uint32_t>> indices_;
  std::vector<attnbench_plan_entry> entries_;
};

}  // namespace attnbench::python_policy
