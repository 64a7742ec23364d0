// Version strings for a LoadGen v2.1 build without version_generator.py (used by check_v21.py).
#include <string>
namespace mlperf {
#define S(name, v) const std::string& name() { static const std::string s(v); return s; }
S(LoadgenVersion, "2.1") S(LoadgenGitRevision, "318cb131") S(LoadgenBuildDateLocal, "x") S(LoadgenBuildDateUtc, "x")
S(LoadgenGitCommitDate, "x") S(LoadgenGitStatus, "") S(LoadgenGitLog, "") S(LoadgenSha1OfFiles, "abc x.cc")
}
