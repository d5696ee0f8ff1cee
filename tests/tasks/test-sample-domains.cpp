// Training samples (attnbench corpus) and evaluation samples come from disjoint random
// streams (rng's domain): the same seed gives different samples in the two domains, the
// evaluation domain is unchanged, and no training sample equals an evaluation sample.
#include <attnbench/kernels/random.hpp>
#include <attnbench/tasks/task.hpp>

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

using namespace attnbench;
using namespace attnbench::tasks;

namespace {

std::uint32_t length_for(const task& t) { return std::max<std::uint32_t>(t.min_context_length(), 1024); }

std::string key(const sample& s) { return std::string(reinterpret_cast<const char*>(s.prompt.data()), s.prompt.size() * sizeof(token)); }

}  // namespace

TEST(SampleDomains, TheEvaluationDomainIsTheSeedsOwnStream) {
  for (std::uint64_t seed : {0ull, 1ull, 42ull, ~0ull}) {
    rng a(seed), b(seed, 0), c(seed, 1);
    std::size_t same_as_training = 0;
    for (int i = 0; i < 1000; ++i) {
      const std::uint64_t x = a.next();
      EXPECT_EQ(x, b.next());
      same_as_training += x == c.next();
    }
    EXPECT_EQ(same_as_training, 0u) << "seed " << seed;
  }
}

TEST(SampleDomains, NoTrainingStreamStartsLikeAnEvaluationStream) {
  // The first four outputs of many seeds in both domains: no training stream starts like
  // an evaluation one (of any seed here, not only its own).
  std::set<std::vector<std::uint64_t>> evaluation;
  auto head = [](rng r) { return std::vector<std::uint64_t>{r.next(), r.next(), r.next(), r.next()}; };
  for (std::uint64_t seed = 0; seed < 20000; ++seed) evaluation.insert(head(rng(seed, 0)));
  for (std::uint64_t seed = 0; seed < 20000; ++seed) EXPECT_EQ(evaluation.count(head(rng(seed, 1))), 0u) << seed;
}

TEST(SampleDomains, EveryTaskDrawsDifferentSamplesForTraining) {
  // Every task of the catalogue: the evaluation samples of the seeds a run derives
  // (run seeds 0-3, 25 samples) and the training samples of the same seeds and of as
  // many others share no prompt.
  for (const auto& info : task_catalogue()) {
    const auto t = make_task(info.name, nlohmann::json::object());
    const std::uint32_t n = length_for(*t);
    std::set<std::string> evaluation;
    for (std::uint64_t run_seed = 0; run_seed < 4; ++run_seed)
      for (std::uint32_t i = 0; i < 25; ++i) evaluation.insert(key(make_indexed_sample(*t, run_seed, n, i)));
    // Evaluation samples do differ from one another, so a shared prompt would be noticed.
    EXPECT_GT(evaluation.size(), 90u) << info.name;
    for (std::uint64_t run_seed = 0; run_seed < 8; ++run_seed)
      for (std::uint32_t i = 0; i < 25; ++i) {
        const sample s = make_indexed_sample(*t, run_seed, n, i, sample_domain::training);
        EXPECT_EQ(s.prompt.size(), n) << info.name;
        EXPECT_EQ(evaluation.count(key(s)), 0u) << info.name << " run seed " << run_seed << " sample " << i;
      }
  }
}

TEST(SampleDomains, TrainingSamplesAreDeterministic) {
  const auto t = make_task("niah_multikey_1", nlohmann::json::object());
  const sample a = t->make_sample(7, 2048, sample_domain::training), b = t->make_sample(7, 2048, sample_domain::training);
  EXPECT_EQ(a.prompt, b.prompt);
  EXPECT_EQ(a.references, b.references);
  EXPECT_NE(a.prompt, t->make_sample(7, 2048).prompt);
}
