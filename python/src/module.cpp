// attnbench._attnbench: what the Python module does in process, without running the
// harness: the task catalogue, the samples a run sees, and the vocabulary. Runs and
// listings go through the attnbench executable (python/attnbench/__init__.py says why).
#include <attnbench/tasks/task.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;
namespace tasks = attnbench::tasks;

namespace {

py::object from_json(const nlohmann::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }

nlohmann::json to_json(const py::object& o) {
  return nlohmann::json::parse(py::str(py::module_::import("json").attr("dumps")(o)).cast<std::string>());
}

py::array_t<std::int32_t> token_array(const std::vector<tasks::token>& tokens) {
  py::array_t<std::int32_t> out(static_cast<py::ssize_t>(tokens.size()));
  for (std::size_t i = 0; i < tokens.size(); ++i) out.mutable_data()[i] = static_cast<std::int32_t>(tokens[i]);
  return out;
}

// Sample `index` of a task at a context length under a run seed: the one a run with that
// seed sees (make_indexed_sample), with its prompt as token ids and as text.
py::dict make_sample(const std::string& task, std::uint32_t context_length, std::uint64_t seed, std::uint32_t index,
                     const py::object& params) {
  std::unique_ptr<tasks::task> t;
  try {
    t = tasks::make_task(task, params.is_none() ? nlohmann::json::object() : to_json(params));
  } catch (const std::out_of_range&) {
    throw py::value_error("unknown task '" + task + "' (attnbench.tasks() names them)");
  } catch (const tasks::task_params_error& e) {
    throw py::value_error(task + ": params" + e.pointer + ": " + e.what());
  }
  tasks::sample s;
  try {
    s = tasks::make_indexed_sample(*t, seed, context_length, index);
  } catch (const tasks::task_error& e) {
    throw py::value_error(e.what());
  }
  const auto& v = tasks::vocabulary::standard();
  py::list follow_ups;
  for (const auto& f : s.follow_ups) follow_ups.append(token_array(f));
  py::dict out;
  out["task"] = task;
  out["context_length"] = context_length;
  out["prompt"] = token_array(s.prompt);
  out["text"] = v.detokenize(s.prompt);
  out["references"] = s.references;
  out["follow_ups"] = follow_ups;
  out["max_new_tokens"] = s.max_new_tokens;
  out["info"] = from_json(s.info);
  return out;
}

}  // namespace

PYBIND11_MODULE(_attnbench, m) {
  m.doc() = "attnbench's tasks and vocabulary in process (the harness itself runs as the attnbench executable)";
  m.def("version", [] { return std::string(ATTNBENCH_VERSION); }, "attnbench's version");
  m.def(
      "tasks",
      [] {
        py::list out;
        for (const auto& t : tasks::task_catalogue()) {
          py::dict d;
          d["name"] = t.name;
          d["description"] = t.description;
          out.append(d);
        }
        return out;
      },
      "Every task: a list of {name, description}");
  m.def("make_sample", &make_sample, py::arg("task"), py::arg("context_length"), py::arg("seed") = 0,
        py::arg("index") = 0, py::arg("params") = py::none(),
        "Sample `index` of a task at a context length under a run seed, as a run sees it: prompt (token ids), "
        "text, references, follow_ups, max_new_tokens and info (needle positions, ...)");
  m.def(
      "tokenize",
      [](const std::string& text) {
        try {
          return token_array(tasks::vocabulary::standard().tokenize(text));
        } catch (const std::out_of_range& e) {
          throw py::value_error(e.what());
        }
      },
      py::arg("text"), "Token ids of text in attnbench's vocabulary");
  m.def(
      "detokenize",
      [](const std::vector<std::int64_t>& ids) {
        const auto& v = tasks::vocabulary::standard();
        std::vector<tasks::token> tokens;
        for (const auto id : ids) {
          if (id < 0 || static_cast<std::size_t>(id) >= v.size())
            throw py::value_error("token id " + std::to_string(id) + " is outside the vocabulary (" +
                                  std::to_string(v.size()) + " tokens)");
          tokens.push_back(static_cast<tasks::token>(id));
        }
        return v.detokenize(tokens);
      },
      py::arg("tokens"), "Text of token ids");
}
