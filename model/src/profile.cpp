// Profiles of the mechanistic model: reading and checking configs/profiles/NAME.json.
#include <attnbench/model/profile.hpp>

#include <attnbench/host/json.hpp>
#include <attnbench/tasks/vocabulary.hpp>

namespace attnbench {

using tasks::vocabulary;

nlohmann::json realistic_knobs::to_json() const {
  return {{"rope_base", rope_base},
          {"rope_factor", rope_factor},
          {"rope_low_freq_factor", rope_low_freq_factor},
          {"rope_high_freq_factor", rope_high_freq_factor},
          {"rope_original_context", rope_original_context},
          {"sink_pairs", sink_pairs},
          {"plain_layers", plain_layers},
          {"plain_sink_logit", plain_sink_logit},
          {"sink_logit", sink_logit},
          {"noise_logit", noise_logit},
          {"local_logit", local_logit},
          {"logit_offset", logit_offset},
          {"key_bias", key_bias},
          {"dormant_share", dormant_share},
          {"positional_share", positional_share},
          {"key_mean", key_mean},
          {"key_token", key_token},
          {"key_context", key_context},
          {"context_stride", context_stride},
          {"query_token", query_token},
          {"retrieval_queries", retrieval_queries},
          {"retrieval_key_share", retrieval_key_share},
          {"value_scale", value_scale}};
}

nlohmann::json model_profile::to_json() const {
  nlohmann::json roles_json = nlohmann::json::array();
  for (const auto& layer : roles) {
    nlohmann::json l = nlohmann::json::array();
    for (auto r : layer) l.push_back(head_role_name(r));
    roles_json.push_back(l);
  }
  nlohmann::json j = {{"name", name},
          {"n_layers", n_layers},
          {"n_query_heads", n_query_heads},
          {"n_kv_heads", n_kv_heads},
          {"head_dim", head_dim},
          {"roles", roles_json},
          {"retrieval_windows", retrieval_windows},
          {"retrieval_sharpness", retrieval_sharpness},
          {"sink_sharpness", sink_sharpness},
          {"sink_value_scale", sink_value_scale},
          {"query_jitter", query_jitter},
          {"retrieval_rest", retrieval_rest},
          {"local_sharpness", local_sharpness},
          {"local_span", local_span},
          {"local_value_scale", local_value_scale},
          {"aggregation_sharpness", aggregation_sharpness},
          {"aggregation_value_scale", aggregation_value_scale},
          {"aggregation_repeat_gain", aggregation_repeat_gain},
          {"aggregation_cues", aggregation_cues},
          {"aggregation_cue_window", aggregation_cue_window}};
  if (realistic) j["realistic"] = realistic->to_json();
  return j;
}

namespace {

// The optional knobs of each role, each within its range.
void read_knobs(const nlohmann::json& j, const json_reader& r, model_profile& p) {
  if (j.contains("retrieval_windows")) {
    const auto& w = j["retrieval_windows"];
    r.expect_array(w, "/retrieval_windows", true);
    p.retrieval_windows.clear();
    for (std::size_t i = 0; i < w.size(); ++i)
      p.retrieval_windows.push_back(
          static_cast<std::uint32_t>(r.integer(w[i], "/retrieval_windows/" + std::to_string(i), 1, 32)));
  }
  auto optional_number = [&](const char* key, double& field, double lo, double hi) {
    if (j.contains(key)) field = r.number(j[key], std::string("/").append(key), lo, hi);
  };
  optional_number("retrieval_sharpness", p.retrieval_sharpness, 0.0, 1000.0);
  optional_number("sink_sharpness", p.sink_sharpness, 0.0, 1000.0);
  optional_number("sink_value_scale", p.sink_value_scale, 0.0, 100.0);
  optional_number("query_jitter", p.query_jitter, 0.0, 1.0);
  optional_number("retrieval_rest", p.retrieval_rest, 0.0, 1000.0);
  optional_number("local_sharpness", p.local_sharpness, 0.0, 1000.0);
  optional_number("local_span", p.local_span, 2.0, 1e9);
  optional_number("local_value_scale", p.local_value_scale, 0.0, 100.0);
  optional_number("aggregation_sharpness", p.aggregation_sharpness, 0.0, 1000.0);
  optional_number("aggregation_value_scale", p.aggregation_value_scale, 0.0, 1000.0);
  optional_number("aggregation_repeat_gain", p.aggregation_repeat_gain, 0.0, 100.0);
  if (j.contains("aggregation_cue_window"))
    p.aggregation_cue_window =
        static_cast<std::uint32_t>(r.integer(j["aggregation_cue_window"], "/aggregation_cue_window", 1, 4096));
  if (j.contains("aggregation_cues")) {
    const auto& c = j["aggregation_cues"];
    r.expect_array(c, "/aggregation_cues", false);
    p.aggregation_cues.clear();
    for (std::size_t i = 0; i < c.size(); ++i) {
      const std::string ptr = "/aggregation_cues/" + std::to_string(i);
      std::string word = r.string(c[i], ptr);
      if (!vocabulary::standard().contains(word)) r.fail(ptr, "\"" + word + "\" is not a vocabulary word");
      p.aggregation_cues.push_back(std::move(word));
    }
  }
}

// The realistic block: every key optional, each within its range.
realistic_knobs read_realistic(const nlohmann::json& j, const json_reader& r, const model_profile& p) {
  const std::string base = "/realistic";
  r.expect_object(j, base);
  r.reject_unknown_keys(j, base, {"rope_base", "rope_factor", "rope_low_freq_factor", "rope_high_freq_factor",
                                  "rope_original_context", "sink_pairs", "plain_layers", "plain_sink_logit",
                                  "sink_logit", "noise_logit", "local_logit", "logit_offset", "key_bias",
                                  "dormant_share", "positional_share", "key_mean",
                                  "key_token", "key_context", "context_stride", "query_token", "retrieval_queries", "retrieval_key_share",
                                  "value_scale"});
  realistic_knobs k;
  auto number = [&](const char* key, double& field, double lo, double hi) {
    if (j.contains(key)) field = r.number(j[key], base + "/" + key, lo, hi);
  };
  auto range = [&](const char* key, std::array<double, 2>& field, double lo, double hi) {
    if (!j.contains(key)) return;
    const std::string ptr = base + "/" + key;
    r.expect_array(j[key], ptr, true);
    if (j[key].size() != 2) r.fail(ptr, "expected [low, high]");
    field = {r.number(j[key][0], ptr + "/0", lo, hi), r.number(j[key][1], ptr + "/1", lo, hi)};
    if (field[0] > field[1]) r.fail(ptr, "low is above high");
  };
  auto integer = [&](const char* key, std::uint32_t& field, long long lo, long long hi) {
    if (j.contains(key)) field = static_cast<std::uint32_t>(r.integer(j[key], base + "/" + key, lo, hi));
  };
  number("rope_base", k.rope_base, 2.0, 1e12);
  number("rope_factor", k.rope_factor, 1.0, 1e6);
  number("rope_low_freq_factor", k.rope_low_freq_factor, 1e-3, 1e3);
  number("rope_high_freq_factor", k.rope_high_freq_factor, 1e-3, 1e3);
  number("rope_original_context", k.rope_original_context, 1.0, 1e9);
  if (k.rope_high_freq_factor <= k.rope_low_freq_factor)
    r.fail(base + "/rope_high_freq_factor", "must be above rope_low_freq_factor");
  integer("sink_pairs", k.sink_pairs, 1, p.head_dim / 4);
  integer("plain_layers", k.plain_layers, 0, p.n_layers);
  range("plain_sink_logit", k.plain_sink_logit, 0.0, 100.0);
  range("sink_logit", k.sink_logit, 0.0, 100.0);
  range("noise_logit", k.noise_logit, 1e-3, 100.0);
  range("local_logit", k.local_logit, 1e-3, 100.0);
  range("logit_offset", k.logit_offset, 1e-3, 1000.0);
  number("key_bias", k.key_bias, 1e-3, 100.0);
  number("dormant_share", k.dormant_share, 0.0, 1.0);
  number("positional_share", k.positional_share, 0.0, 0.9);
  number("key_mean", k.key_mean, 0.0, 100.0);
  number("key_token", k.key_token, 1e-3, 100.0);
  number("key_context", k.key_context, 0.0, 100.0);
  integer("context_stride", k.context_stride, 1, 1 << 20);
  number("query_token", k.query_token, 0.0, 100.0);
  integer("retrieval_queries", k.retrieval_queries, 0, p.n_query_heads / p.n_kv_heads);
  number("retrieval_key_share", k.retrieval_key_share, 0.0, 10.0);
  number("value_scale", k.value_scale, 0.0, 100.0);
  return k;
}

// One layer's roles: an array of n_kv_heads role names.
std::vector<head_role> read_layer_roles(const nlohmann::json& arr, const std::string& ptr, const json_reader& r,
                                        std::uint32_t n_kv_heads) {
  r.expect_array(arr, ptr, true);
  if (arr.size() != n_kv_heads)
    r.fail(ptr, "expected " + std::to_string(n_kv_heads) + " roles (one per KV head), got " + std::to_string(arr.size()));
  std::vector<head_role> out;
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const std::string name = r.string(arr[i], ptr + "/" + std::to_string(i));
    if (name == "retrieval") out.push_back(head_role::retrieval);
    else if (name == "sink") out.push_back(head_role::sink);
    else if (name == "local") out.push_back(head_role::local);
    else if (name == "aggregation") out.push_back(head_role::aggregation);
    else
      r.fail(ptr + "/" + std::to_string(i),
             "unknown head role \"" + name + "\" (known: retrieval, sink, local, aggregation)");
  }
  return out;
}

// roles: one array of n_kv_heads role names used by every layer, or one such array per layer.
void read_roles(const nlohmann::json& roles, const json_reader& r, model_profile& p) {
  r.expect_array(roles, "/roles", true);
  if (roles[0].is_string()) {
    p.roles.assign(p.n_layers, read_layer_roles(roles, "/roles", r, p.n_kv_heads));
    return;
  }
  if (roles.size() != p.n_layers)
    r.fail("/roles", "expected one role array per layer (" + std::to_string(p.n_layers) + "), got " +
                         std::to_string(roles.size()));
  for (std::size_t l = 0; l < roles.size(); ++l)
    p.roles.push_back(read_layer_roles(roles[l], "/roles/" + std::to_string(l), r, p.n_kv_heads));
}

}  // namespace

model_profile load_profile(const std::filesystem::path& file) {
  const nlohmann::json j = read_json_file(file);
  const json_reader r(file.string());
  r.expect_object(j, "");
  r.reject_unknown_keys(j, "", {"name", "description", "n_layers", "n_query_heads", "n_kv_heads", "head_dim", "roles",
                                "retrieval_windows", "retrieval_sharpness", "sink_sharpness", "sink_value_scale",
                                "query_jitter", "retrieval_rest", "local_sharpness", "local_span", "local_value_scale",
                                "aggregation_sharpness", "aggregation_value_scale", "aggregation_repeat_gain", "aggregation_cues",
                                "aggregation_cue_window", "realistic"});
  auto required = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key)) r.fail(std::string("/").append(key), "required field is missing");
    return j.at(key);
  };
  model_profile p;
  p.name = j.contains("name") ? r.string(j["name"], "/name") : file.stem().string();
  p.n_layers = static_cast<std::uint32_t>(r.integer(required("n_layers"), "/n_layers", 1, 256));
  p.n_query_heads = static_cast<std::uint32_t>(r.integer(required("n_query_heads"), "/n_query_heads", 1, 1024));
  p.n_kv_heads = static_cast<std::uint32_t>(r.integer(required("n_kv_heads"), "/n_kv_heads", 1, 1024));
  p.head_dim = static_cast<std::uint32_t>(r.integer(required("head_dim"), "/head_dim", 8, 1024));
  if (p.n_query_heads % p.n_kv_heads != 0)
    r.fail("/n_query_heads", "must be a multiple of n_kv_heads (" + std::to_string(p.n_kv_heads) + "), got " +
                                 std::to_string(p.n_query_heads));
  read_knobs(j, r, p);
  read_roles(required("roles"), r, p);
  if (j.contains("realistic")) p.realistic = read_realistic(j["realistic"], r, p);
  return p;
}

}  // namespace attnbench
