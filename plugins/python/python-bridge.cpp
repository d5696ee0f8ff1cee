#include "python-bridge.hpp"

#include <pybind11/embed.h>

#include <dlfcn.h>
#include <pthread.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>

namespace attnbench::python_policy {

namespace {


// numpy.asarray, looked up once (every plan item goes through it).
const py::object& as_array() {
  static const auto* f = new py::object(py::module_::import("numpy").attr("asarray"));  // never freed
  return *f;
}

std::string dtype_name(std::uint32_t dtype) {
  switch (dtype) {
    case ATTNBENCH_DTYPE_FP32: return "fp32";
    case ATTNBENCH_DTYPE_FP16: return "fp16";
    case ATTNBENCH_DTYPE_BF16: return "bf16";
    default: return "unknown";
  }
}

// numpy's dtype for a cached K/V element; bf16, which numpy lacks, as its raw 16 bits.
py::dtype element_dtype(std::uint32_t dtype) {
  if (dtype == ATTNBENCH_DTYPE_FP32) return py::dtype("float32");
  if (dtype == ATTNBENCH_DTYPE_FP16) return py::dtype("float16");
  return py::dtype("uint16");
}

py::array read_only(py::array a) {
  a.attr("setflags")(py::arg("write") = false);
  return a;
}

// Every view a call made, to check that none outlives it.
thread_local std::vector<py::object>* made = nullptr;
py::array track(py::array a) {
  if (made) made->push_back(a);
  return a;
}

}  // namespace

namespace {

// The run process starts the interpreter when it checks a config's policies, then forks
// its worker: as os.fork does, the forking thread holds the GIL across the fork and the
// child resets the interpreter's locks and threads, so a module that started threads
// cannot leave the worker's interpreter locked.
PyGILState_STATE fork_gil;
void before_fork() {
  fork_gil = PyGILState_Ensure();
  PyOS_BeforeFork();
}
void after_fork_parent() {
  PyOS_AfterFork_Parent();
  PyGILState_Release(fork_gil);
}
void after_fork_child() {
  PyOS_AfterFork_Child();
  PyGILState_Release(fork_gil);
}

}  // namespace

const py::object& simple_namespace() {
  static const auto* type = new py::object(py::module_::import("types").attr("SimpleNamespace"));  // never freed
  return *type;
}

void ensure_interpreter() {
  static std::once_flag once;
  std::call_once(once, [] {
    // The plugin was loaded with local symbols, and libpython with it; NumPy's extension
    // modules look for Python's symbols globally.
    dlopen(ATTNBENCH_LIBPYTHON, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    if (Py_IsInitialized()) return;  // the host is Python
    // One policy call runs on one of the host's threads: NumPy's BLAS keeps to it, as the
    // trained model's does (model/src/dense-forward.cpp). A policy's print() reaches
    // the terminal line by line: the worker ends without flushing Python's buffers.
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("PYTHONUNBUFFERED", "1", 0);
    py::initialize_interpreter(false);  // no signal handlers: Ctrl-C stays the host's
    PyEval_SaveThread();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
  });
}

std::string describe(const py::error_already_set& e, const std::string& user_file) {
  try {
    const py::object value = e.value();
    const std::string type = py::str(e.type().attr("__name__"));
    std::string where;
    if (py::isinstance(value, py::handle(PyExc_SyntaxError)) && !value.attr("filename").is_none()) {
      where = py::str(value.attr("filename")).cast<std::string>() + ":" + py::str(value.attr("lineno")).cast<std::string>();
      return where + ": " + type + ": " + py::str(value.attr("msg")).cast<std::string>();
    }
    if (e.trace()) {
      // The innermost frame in the user's file, and the innermost of all when that is
      // elsewhere (inside NumPy, say).
      const py::list frames = py::module_::import("traceback").attr("extract_tb")(e.trace());
      auto frame = [](py::handle f) {
        return py::str(f.attr("filename")).cast<std::string>() + ":" + py::str(f.attr("lineno")).cast<std::string>() +
               " in " + py::str(f.attr("name")).cast<std::string>();
      };
      std::string innermost, own;
      for (std::size_t i = 0; i < frames.size(); ++i) {
        innermost = frame(frames[i]);
        if (!user_file.empty() && py::str(frames[i].attr("filename")).cast<std::string>() == user_file) own = innermost;
      }
      where = own.empty() || own == innermost ? innermost : own + " (raised at " + innermost + ")";
    }
    return (where.empty() ? "" : where + ": ") + type + ": " + py::str(value).cast<std::string>();
  } catch (const std::exception&) {
    return e.what();
  }
}

py::object load_module(const std::string& module, const std::vector<std::string>& extra_path) {
  const py::module_ sys = py::module_::import("sys");
  for (const auto& folder : extra_path) {
    const std::string absolute = std::filesystem::absolute(folder).string();
    if (!sys.attr("path").contains(absolute)) sys.attr("path").attr("insert")(0, absolute);
  }
  const bool is_file = module.ends_with(".py") || module.find('/') != std::string::npos;
  if (!is_file) return py::module_::import(module.c_str());
  const std::filesystem::path file = std::filesystem::absolute(module);
  if (!std::filesystem::is_regular_file(file)) throw std::runtime_error("no such file: " + file.string());
  static auto* loaded = new py::dict();  // absolute path -> module; never freed (outlives exit)
  const py::str key(file.string());
  if (loaded->contains(key)) return (*loaded)[key];
  const py::module_ util = py::module_::import("importlib.util");
  const std::string name = "attnbench_policy_" + std::to_string(loaded->size()) + "_" + file.stem().string();
  const py::object spec = util.attr("spec_from_file_location")(name, file.string());
  const py::object mod = util.attr("module_from_spec")(spec);
  sys.attr("modules")[py::str(name)] = mod;
  spec.attr("loader").attr("exec_module")(mod);
  (*loaded)[key] = mod;
  return mod;
}

py::object model_namespace(const attnbench_model_info& m) {
  return simple_namespace()(py::arg("n_layers") = m.n_layers, py::arg("n_query_heads") = m.n_query_heads,
                            py::arg("n_kv_heads") = m.n_kv_heads, py::arg("head_dim") = m.head_dim,
                            py::arg("block_size") = m.block_size, py::arg("dtype") = dtype_name(m.dtype));
}

call_views::call_views() {
  previous_ = made;
  made = &views_;
}

call_views::~call_views() {
  *alive_ = false;
  made = previous_;
}

void call_views::check_released() {
  made = previous_;
  auto kept = [&] {
    return std::any_of(views_.begin(), views_.end(), [](const py::object& v) { return v.ref_count() > 1; });
  };
  if (kept()) py::module_::import("gc").attr("collect")();  // a cycle that holds one, not yet collected
  if (kept())
    throw std::runtime_error("the policy kept a view of the cache or the queries (or an array on one) past the call "
                             "that received it; that memory is the host's and changes after the call: keep a copy "
                             "(np.array(view))");
  views_.clear();
}

py::array call_views::floats(const float* data, py::ssize_t rows, py::ssize_t cols) {
  return track(read_only(py::array(py::dtype("float32"), {rows, cols}, {cols * 4, py::ssize_t{4}}, data, py::none())));
}

py::list call_views::layer(const attnbench_kv_layer_view& kv) {
  py::list heads;
  for (std::uint32_t h = 0; h < kv.n_kv_heads; ++h) heads.append(head(kv, h));
  return heads;
}

py::object call_views::head(const attnbench_kv_layer_view& kv, std::uint32_t h) {
  const attnbench_kv_head_view& v = kv.heads[h];
  const auto nb = static_cast<py::ssize_t>(v.n_blocks), d = static_cast<py::ssize_t>(kv.head_dim);
  const std::uint32_t dtype = kv.dtype, block = kv.block_size;
  const std::uint64_t n = v.n_tokens;
  const std::shared_ptr<bool> alive = alive_;
  // The blocks of one head as [tokens, head_dim] arrays, made on demand.
  auto blocks = [alive, dtype, block, n, d](const void* const* data, std::uint32_t count) {
    if (!*alive) throw std::runtime_error("a cache view was used after the call that received it returned");
    const py::dtype dt = element_dtype(dtype);
    const auto size = static_cast<py::ssize_t>(dt.itemsize());
    py::list out;
    for (std::uint32_t b = 0; b < count; ++b) {
      const auto rows = static_cast<py::ssize_t>(std::min<std::uint64_t>(block, n - std::uint64_t{b} * block));
      out.append(track(read_only(py::array(dt, {rows, d}, {d * size, size}, data[b], py::none()))));
    }
    return out;
  };
  const void* const* keys = v.key_blocks;
  const void* const* values = v.value_blocks;
  const std::uint32_t count = v.n_blocks;
  py::object positions = py::none();
  if (v.positions)
    positions = track(read_only(py::array(py::dtype("int64"), {static_cast<py::ssize_t>(n)}, {py::ssize_t{8}},
                                          v.positions, py::none())));
  return simple_namespace()(
      py::arg("n_tokens") = n, py::arg("n_blocks") = count, py::arg("block_size") = block,
      py::arg("key_min") = floats(v.key_min, nb, d), py::arg("key_max") = floats(v.key_max, nb, d),
      py::arg("key_mean") = floats(v.key_mean, nb, d),
      py::arg("value_norm_max") =
          track(read_only(py::array(py::dtype("float32"), {nb}, {py::ssize_t{4}}, v.value_norm_max, py::none()))),
      py::arg("positions") = positions,
      py::arg("key_blocks") = py::cpp_function([blocks, keys, count] { return blocks(keys, count); }),
      py::arg("value_blocks") = py::cpp_function([blocks, values, count] { return blocks(values, count); }));
}

attnbench_plan plan_buffer::fill(py::handle result, const attnbench_kv_layer_view& kv, std::uint32_t n_query_heads,
                                 bool keep_set) {
  const std::uint32_t n_kv = kv.n_kv_heads;
  indices_.clear();
  entries_.clear();
  if (result.is_none()) {
    entries_.assign(n_kv, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
    return attnbench_plan{ATTNBENCH_PLAN_PER_KV_HEAD, n_kv, entries_.data()};
  }
  if (!py::isinstance<py::sequence>(result) || py::isinstance<py::str>(result))
    throw std::runtime_error("expected None or a list with one item per KV head, got " +
                             py::str(py::type::handle_of(result).attr("__name__")).cast<std::string>());
  const py::sequence items = py::reinterpret_borrow<py::sequence>(result);
  const std::size_t n = items.size();
  if (n != n_kv && (keep_set || n != n_query_heads))
    throw std::runtime_error("returned " + std::to_string(n) + " items; expected one per KV head (" +
                             std::to_string(n_kv) + ")" +
                             (keep_set ? std::string() : " or per query head (" + std::to_string(n_query_heads) + ")"));
  indices_.resize(n);
  for (std::size_t i = 0; i < n; ++i) entries_.push_back(entry(items[i], keep_set, i));
  const std::uint32_t granularity = n == n_kv ? ATTNBENCH_PLAN_PER_KV_HEAD : ATTNBENCH_PLAN_PER_QUERY_HEAD;
  return attnbench_plan{granularity, static_cast<std::uint32_t>(n), entries_.data()};
}

attnbench_plan_entry plan_buffer::entry(py::handle item, bool keep_set, std::size_t slot) {
  if (item.is_none()) return attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr};
  std::uint32_t kind = ATTNBENCH_PLAN_TOKENS;
  py::handle array = item;
  if (py::isinstance<py::tuple>(item) && py::len(item) == 2 && py::isinstance<py::str>(item[py::int_(0)])) {
    const std::string word = py::str(item[py::int_(0)]);
    if (word != "blocks" && word != "tokens")
      throw std::runtime_error("item " + std::to_string(slot) + ": expected (\"blocks\", indices) or (\"tokens\", indices), got \"" + word + "\"");
    if (word == "blocks" && keep_set) throw std::runtime_error("item " + std::to_string(slot) + ": a keep set lists tokens, not blocks");
    kind = word == "blocks" ? ATTNBENCH_PLAN_BLOCKS : ATTNBENCH_PLAN_TOKENS;
    array = item[py::int_(1)];
  }
  const py::array given = as_array()(array);
  const char element = given.dtype().kind();
  if (given.size() > 0 && element != 'i' && element != 'u')
    throw std::runtime_error("item " + std::to_string(slot) + ": expected integer indices, got an array of dtype " +
                             py::str(given.dtype()).cast<std::string>());
  const auto a = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(given);
  if (!a || a.ndim() != 1)
    throw std::runtime_error("item " + std::to_string(slot) + ": expected None or a one-dimensional array of indices");
  auto& out = indices_[slot];
  out.reserve(static_cast<std::size_t>(a.size()));
  for (py::ssize_t i = 0; i < a.size(); ++i) {
    const std::int64_t x = a.data()[i];
    if (x < 0 || x > std::int64_t{0xfffffffe})
      throw std::runtime_error("item " + std::to_string(slot) + ": index " + std::to_string(x) + " out of range");
    out.push_back(static_cast<std::uint32_t>(x));
  }
  if (keep_set) std::sort(out.begin(), out.end());
  return attnbench_plan_entry{kind, static_cast<std::uint32_t>(out.size()), out.data(), nullptr};
}

}  // namespace attnbench::python_policy
