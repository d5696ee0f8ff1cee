// The closest known name, offered after an unknown one.
#include <attnbench/host/spelling.hpp>

#include <gtest/gtest.h>

using namespace attnbench;

TEST(Spelling, EditDistanceCountsInsertionsDeletionsSubstitutionsAndSwaps) {
  EXPECT_EQ(edit_distance("run", "run"), 0u);
  EXPECT_EQ(edit_distance("rnu", "run"), 1u);       // neighbours swapped
  EXPECT_EQ(edit_distance("merg", "merge"), 1u);    // one letter missing
  EXPECT_EQ(edit_distance("policys", "policies"), 2u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(Spelling, OnlyANearNameIsOffered) {
  const std::vector<std::string> subcommands = {"run", "validate", "report", "merge", "compare"};
  EXPECT_EQ(closest_word("rnu", subcommands), "run");
  EXPECT_EQ(closest_word("reprot", subcommands), "report");
  EXPECT_EQ(closest_word("frobnicate", subcommands), "");
  EXPECT_EQ(closest_word("x", subcommands), "");  // one edit from nothing listed
  EXPECT_EQ(did_you_mean("policys", {"tasks", "policies", "seeds"}), " (did you mean 'policies'?)");
  EXPECT_EQ(did_you_mean("zzz", {"tasks"}), "");
  EXPECT_EQ(closest_word("anything", {}), "");
  EXPECT_EQ(closest_word("run", {"run"}), "");  // the word itself is never offered
  EXPECT_EQ(closest_word("run", {"run", "rnu"}), "rnu");
}

TEST(Spelling, CountsTakeTheirNounsNumber) {
  EXPECT_EQ(count_of(1, "seed"), "1 seed");
  EXPECT_EQ(count_of(0, "seed"), "0 seeds");
  EXPECT_EQ(count_of(2, "policy", "policies"), "2 policies");
  EXPECT_EQ(count_of(1, "policy", "policies"), "1 policy");
}
