// Dev-time LoadGen v2.1 driver for check_v21.py: a C++ SUT that records each query's sample indices
// and completes it inline, and a QSL with the given counts. Settings come from FromConfig (v2.1 reads
// every key, seeds included).
// usage: driver21 PRESET_CONF MODEL SCENARIO(0-3) TOTAL PERF OUT_ISSUED USER_CONF SCENARIO_NAME
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include "loadgen.h"
#include "query_sample_library.h"
#include "system_under_test.h"
#include "test_settings.h"
using namespace mlperf;
struct Qsl : QuerySampleLibrary {
  size_t total, perf;
  const std::string& Name() override { static std::string n("CQSL"); return n; }
  size_t TotalSampleCount() override { return total; }
  size_t PerformanceSampleCount() override { return perf; }
  void LoadSamplesToRam(const std::vector<QuerySampleIndex>&) override {}
  void UnloadSamplesFromRam(const std::vector<QuerySampleIndex>&) override {}
};
struct Sut : SystemUnderTest {
  FILE* out;
  const std::string& Name() override { static std::string n("CSUT"); return n; }
  void IssueQuery(const std::vector<QuerySample>& samples) override {
    std::vector<QuerySampleResponse> r;
    for (size_t i = 0; i < samples.size(); i++) { fprintf(out, i ? " %zu" : "%zu", samples[i].index); r.push_back({samples[i].id, 0, 0}); }
    fprintf(out, "\n");
    QuerySamplesComplete(r.data(), r.size());
  }
  void FlushQueries() override {}
};
int main(int argc, char** argv) {
  TestSettings s;
  s.scenario = static_cast<TestScenario>(atoi(argv[3]));
  int rc = s.FromConfig(argv[1], argv[2], argv[8]);
  if (argc > 7 && std::string(argv[7]).size()) rc = rc ? rc : s.FromConfig(argv[7], argv[2], argv[8]);
  fprintf(stderr, "rc %d\n", rc);
  Qsl q; q.total = atoll(argv[4]); q.perf = atoll(argv[5]);
  Sut sut; sut.out = fopen(argv[6], "w");
  LogSettings ls; ls.enable_trace = true;
  StartTest(&sut, &q, s, ls);
  fclose(sut.out);
}
