#include <attnbench/run/plugins.hpp>

#include <attnbench/tasks/task.hpp>

namespace attnbench {

namespace fs = std::filesystem;
using nlohmann::json;

json resolved_plugins::info() const {
  json out = json::array();
  for (const auto& l : policies) out.push_back(l->info_json());
  for (const auto& l : terminators)
    if (l) out.push_back(l->info_json());
  return out;
}

attnbench_model_info model_info(const run_config& config, const model_shape& p) {
  return {p.n_layers, p.n_query_heads, p.n_kv_heads, p.head_dim, config.block_size,
          static_cast<std::uint32_t>(config.dtype)};
}

resolved_plugins resolve_plugins(const run_config& config, const model_shape& shape, plugin_registry& registry) {
  resolved_plugins out;
  const attnbench_model_info info = model_info(config, shape);
  auto load = [&](const plugin_spec& spec, attnbench_plugin_kind kind, const std::string& pointer) {
    const std::string where = config.file.string() + ": " + pointer + ": ";
    std::shared_ptr<plugin_library> lib;
    try {
      if (spec.plugin_file.empty()) {
        lib = registry.find(spec.name, kind);
      } else {
        fs::path file(spec.plugin_file);
        if (file.is_relative()) file = config.file.parent_path() / file;
        lib = registry.load_file(file);
        if (lib->name() != spec.name)
          throw plugin_error(lib->label() + " is named '" + lib->name() + "', the config asks for '" + spec.name + "'");
        if (lib->kind() != kind)
          throw plugin_error(lib->label() + " is a " + plugin_kind_name(lib->kind()) + ", not a " +
                             plugin_kind_name(kind));
      }
      // Create once now so that rejected params fail before any cell runs.
      if (kind == ATTNBENCH_PLUGIN_POLICY) policy_instance check(lib, spec.params, info);
      else terminator_instance check(lib, spec.params, info);
    } catch (const plugin_error& e) {
      throw plugin_error(where + e.what());
    }
    return lib;
  };
  for (std::size_t i = 0; i < config.policies.size(); ++i)
    out.policies.push_back(load(config.policies[i], ATTNBENCH_PLUGIN_POLICY, "/policies/" + std::to_string(i)));
  for (std::size_t i = 0; i < config.terminators.size(); ++i) {
    const auto& spec = config.terminators[i];
    if (spec.name == "none" && spec.plugin_file.empty()) {
      if (!spec.params.empty())
        throw config_error(config.file.string(), "/terminators/" + std::to_string(i) + "/params",
                           "the built-in terminator 'none' takes no parameters");
      out.terminators.push_back(nullptr);
    } else {
      out.terminators.push_back(load(spec, ATTNBENCH_PLUGIN_TERMINATOR, "/terminators/" + std::to_string(i)));
    }
  }
  return out;
}

task_rules config_task_rules() {
  task_rules rules;
  for (const auto& t : tasks::task_catalogue()) rules.names.push_back(t.name);
  rules.check = [](const std::string& name, const nlohmann::json& params) {
    task_rules::verdict v;
    try {
      const auto task = tasks::make_task(name, params);
      v.known = true;
      v.min_context_length = task->min_context_length();
    } catch (const std::out_of_range&) {
      v.known = false;
    } catch (const tasks::task_params_error& err) {
      v.known = true;
      v.params_pointer = err.pointer;
      v.problem = err.what();
    }
    return v;
  };
  return rules;
}

}  // namespace attnbench
