// python: an attention policy written in Python. The params name a module (a .py file
// or an importable name) and a class; each instance of this plugin makes one instance of
// that class and forwards the policy operations to it, with numpy views of the queries
// and of the cache (plugins/python/README.md). A Python exception becomes the operation's
// error, naming the file and line; nothing Python does can crash the host.
#include "python-bridge.hpp"

#include <attnbench/plugin-support.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace py = pybind11;
namespace pp = attnbench::python_policy;
using attnbench::plugin::fail;
using attnbench::plugin::guard;
using attnbench::plugin::params_error;

struct python_policy {
  py::object object;  // the user's policy; touched only with the GIL held
  std::string file;   // its module's file, which error messages point into
  std::uint32_t n_query_heads = 0, head_dim = 0;
  pp::plan_buffer plan, keep;
  std::string stats;
};

struct settings {
  std::string module, class_name;
  nlohmann::json params = nlohmann::json::object();
  std::vector<std::string> path;
};

settings read_settings(const char* params_json) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(params_json ? params_json : "{}");
  } catch (const nlohmann::json::exception& e) {
    throw params_error(std::string("params are not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw params_error("params must be a JSON object");
  settings s;
  for (const auto& [key, value] : j.items()) {
    if (key == "module" || key == "class") {
      if (!value.is_string() || value.get<std::string>().empty())
        throw params_error(key + ": expected a non-empty string, got " + value.dump());
      (key == "module" ? s.module : s.class_name) = value.get<std::string>();
    } else if (key == "params") {
      if (!value.is_object()) throw params_error("params: expected an object (the class's keyword arguments)");
      s.params = value;
    } else if (key == "path") {
      if (!value.is_array()) throw params_error("path: expected an array of folders");
      for (const auto& folder : value) {
        if (!folder.is_string()) throw params_error("path: expected an array of folders, got " + folder.dump());
        s.path.push_back(folder.get<std::string>());
      }
    } else {
      throw params_error(key + ": unknown parameter for python (known: module, class, params, path)");
    }
  }
  if (s.module.empty()) throw params_error("module: required (a .py file or an importable module name)");
  if (s.class_name.empty()) throw params_error("class: required (the policy class in " + s.module + ")");
  return s;
}

// Runs fn with the GIL held; a Python exception becomes `status` with "OPERATION:
// FILE:LINE in FUNCTION: Type: message".
template <class F>
attnbench_status with_python(const char* operation, attnbench_status status, const std::string& file, F&& fn) {
  return guard([&] {
    py::gil_scoped_acquire gil;
    try {
      return fn();
    } catch (py::error_already_set& e) {
      return fail(status, std::string(operation) + ": " + pp::describe(e, file));
    } catch (const py::cast_error& e) {
      return fail(status, std::string(operation) + ": " + e.what());
    } catch (const std::runtime_error& e) {
      if (dynamic_cast<const params_error*>(&e)) throw;
      return fail(status, std::string(operation) + ": " + e.what());
    }
  });
}

attnbench_status python_create(const char* params_json, const attnbench_model_info* model, void** out) {
  return guard([&] {
    const settings s = read_settings(params_json);
    pp::ensure_interpreter();
    auto p = std::make_unique<python_policy>();
    p->n_query_heads = model->n_query_heads;
    p->head_dim = model->head_dim;
    const attnbench_status status = with_python(s.module.c_str(), ATTNBENCH_STATUS_INVALID_PARAMS, "", [&] {
      const py::object mod = pp::load_module(s.module, s.path);
      if (py::hasattr(mod, "__file__") && !mod.attr("__file__").is_none()) p->file = py::str(mod.attr("__file__"));
      if (!py::hasattr(mod, s.class_name.c_str()))
        return fail(ATTNBENCH_STATUS_INVALID_PARAMS, "class: " + s.module + " has no '" + s.class_name + "'");
      const py::object kwargs = py::module_::import("json").attr("loads")(s.params.dump());
      p->object = mod.attr(s.class_name.c_str())(pp::model_namespace(*model), **kwargs);
      if (!py::hasattr(p->object, "plan"))
        return fail(ATTNBENCH_STATUS_INVALID_PARAMS, "class: " + s.class_name + " has no plan method");
      return ATTNBENCH_STATUS_OK;
    });
    if (status != ATTNBENCH_STATUS_OK) {
      py::gil_scoped_acquire gil;
      p->object = py::object();
      return status;
    }
    *out = p.release();
    return ATTNBENCH_STATUS_OK;
  });
}

void python_destroy(void* instance) {
  try {
    py::gil_scoped_acquire gil;
    delete static_cast<python_policy*>(instance);
  } catch (...) {  // nothing crosses the ABI; the instance is lost
  }
}

// Calls the policy's `method` with a request of `fields` plus the queries and the
// layer's cache as views, and fills `buffer` from what it returns. The request is
// released before the check that no view outlives the call.
attnbench_plan call_policy(python_policy& p, const char* method, const py::dict& fields, const float* queries,
                           std::uint32_t n_query_heads, const attnbench_kv_layer_view& kv, pp::plan_buffer& buffer,
                           bool keep_set) {
  pp::call_views views;
  py::dict all;
  for (const auto& [key, value] : fields) all[key] = value;
  all["n_query_heads"] = n_query_heads;
  all["queries"] = views.floats(queries, n_query_heads, p.head_dim);
  all["kv"] = views.layer(kv);
  py::object req = pp::simple_namespace()(**all);
  all = py::dict();
  py::object result = p.object.attr(method)(req);
  const attnbench_plan plan = buffer.fill(result, kv, n_query_heads, keep_set);
  req = result = py::object();
  views.check_released();
  return plan;
}

attnbench_status python_plan(void* instance, const attnbench_plan_request* request, attnbench_plan* out) {
  auto* p = static_cast<python_policy*>(instance);
  return with_python("plan", ATTNBENCH_STATUS_INTERNAL, p->file, [&] {
    const py::dict fields(py::arg("layer") = request->layer, py::arg("step") = request->step,
                          py::arg("position") = request->position, py::arg("scale") = request->scale);
    *out = call_policy(*p, "plan", fields, request->queries, request->n_query_heads, *request->kv, p->plan, false);
    return ATTNBENCH_STATUS_OK;
  });
}

attnbench_status python_on_prefill(void* instance, const attnbench_prefill_request* request,
                                   attnbench_plan* out_keep) {
  auto* p = static_cast<python_policy*>(instance);
  return with_python("on_prefill", ATTNBENCH_STATUS_INTERNAL, p->file, [&] {
    if (!py::hasattr(p->object, "on_prefill")) {
      *out_keep = p->keep.fill(py::none(), *request->kv, request->n_query_heads, true);
      return ATTNBENCH_STATUS_OK;
    }
    const py::dict fields(py::arg("layer") = request->layer, py::arg("n_prompt_tokens") = request->n_prompt_tokens,
                          py::arg("scale") = request->scale);
    *out_keep = call_policy(*p, "on_prefill", fields, request->last_queries, request->n_query_heads, *request->kv,
                            p->keep, true);
    return ATTNBENCH_STATUS_OK;
  });
}

// The class's stats() (a dict of numbers; NumPy scalars are read as numbers), if it has
// one. None when it has none, or when they are not finite numbers: the ABI gives
// stats_json no way to fail, so that case is logged on stderr.
const char* python_stats(void* instance) {
  auto* p = static_cast<python_policy*>(instance);
  const attnbench_status status = with_python("stats", ATTNBENCH_STATUS_INTERNAL, p->file, [&] {
    p->stats.clear();
    if (py::hasattr(p->object, "stats"))
      p->stats = py::str(py::module_::import("json").attr("dumps")(
          p->object.attr("stats")(), py::arg("allow_nan") = false,
          py::arg("default") = py::cpp_function([](py::handle o) -> py::object { return o.attr("item")(); })));
    return ATTNBENCH_STATUS_OK;
  });
  if (status != ATTNBENCH_STATUS_OK) std::fprintf(stderr, "python policy: stats left out: %s\n", attnbench::plugin::last_error());
  return status == ATTNBENCH_STATUS_OK && !p->stats.empty() ? p->stats.c_str() : nullptr;
}

constexpr attnbench_policy_ops kOps = {
    /*create=*/python_create,
    /*destroy=*/python_destroy,
    /*plan=*/python_plan,
    /*on_prefill=*/python_on_prefill,
    /*stats_json=*/python_stats,
};

constexpr auto kDescriptor = attnbench::plugin::policy_descriptor(
    "python", "1.0.0", "a policy class written in Python (params: module, class, params, path)", &kOps);

}  // namespace

ATTNBENCH_PLUGIN_ENTRY(kDescriptor)
