// Documentation that cannot go stale: the tutorial's code blocks are the compiled example's
// marked blocks, verbatim, and every header path the docs name exists.
#include <catch2/catch.hpp>
#include <lowbit/quant/quant.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The blocks between "// [step: NAME]" and "// [end]" of a source file, with the marker's
// indentation removed from each line (the doc shows them flush left).
std::vector<std::string> marked_blocks(const std::string& src) {
  std::vector<std::string> out;
  std::istringstream in(src);
  std::string line, indent, body;
  bool inside = false;
  static const std::regex begin("^([ \\t]*)// \\[step: \\w+\\]$"), end("^[ \\t]*// \\[end\\]$");
  std::smatch m;
  while (std::getline(in, line)) {
    if (!inside && std::regex_match(line, m, begin)) {
      inside = true;
      indent = m[1];
      body.clear();
    } else if (inside && std::regex_match(line, end)) {
      inside = false;
      if (!body.empty()) body.pop_back();  // no trailing newline
      out.push_back(body);
    } else if (inside) {
      body += (line.compare(0, indent.size(), indent) == 0 ? line.substr(indent.size()) : line) + "\n";
    }
  }
  REQUIRE_FALSE(inside);  // every [step] has its [end]
  return out;
}

std::vector<std::string> cpp_blocks(const std::string& md) {
  std::vector<std::string> out;
  size_t p = 0;
  while ((p = md.find("```cpp\n", p)) != std::string::npos) {
    const size_t start = p + 7, stop = md.find("\n```", start);
    REQUIRE(stop != std::string::npos);
    out.push_back(md.substr(start, stop - start));
    p = stop + 4;
  }
  return out;
}

}  // namespace

TEST_CASE("docs: every code block of tutorial.md is a marked block of examples/tutorial.cpp", "[docs]") {
  const fs::path root = LOWBIT_SOURCE_DIR;
  const auto code = marked_blocks(read_text(root / "examples" / "tutorial.cpp"));
  const auto doc = cpp_blocks(read_text(root / "docs" / "tutorial.md"));
  REQUIRE(code.size() >= 5);
  CHECK(doc.size() == code.size());
  for (auto& d : doc) {
    INFO("docs/tutorial.md block:\n" << d);
    CHECK(std::find(code.begin(), code.end(), d) != code.end());
  }
  for (auto& c : code) {
    INFO("examples/tutorial.cpp block not quoted in docs/tutorial.md:\n" << c);
    CHECK(std::find(doc.begin(), doc.end(), c) != doc.end());
  }
}

TEST_CASE("docs: every header, example and test path named in docs/ and README exists", "[docs]") {
  const fs::path root = LOWBIT_SOURCE_DIR;
  std::vector<fs::path> pages{root / "README.md"};
  for (auto& e : fs::directory_iterator(root / "docs"))
    if (e.path().extension() == ".md") pages.push_back(e.path());
  static const std::regex path_re("((?:include/lowbit|examples|benchmarks|tests|scripts|tools)/[A-Za-z0-9_./-]+\\.(?:hpp|cpp|sh|py|json))");
  int checked = 0;
  for (auto& page : pages) {
    const std::string text = read_text(page);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), path_re); it != std::sregex_iterator(); ++it) {
      const std::string rel = (*it)[1];
      INFO(page.filename().string() << " names " << rel);
      CHECK(fs::exists(root / rel));
      ++checked;
    }
  }
  CHECK(checked > 20);  // the pages do point into the code
}

// The option tables of the method pages are the methods' own schemas (io/options.hpp), so a
// default or range changed in code cannot leave a page behind. On a mismatch the test prints
// the table to paste between the markers.
TEST_CASE("docs: each method page's options table is its option schema", "[docs]") {
  const fs::path root = LOWBIT_SOURCE_DIR;
  const std::vector<std::pair<std::string, std::string>> pages{
      {"ste", "quantization.md"}, {"slb", "slb.md"}, {"apot", "apot.md"}, {"alq", "alq.md"}};
  for (auto& [method, page] : pages) {
    const std::string text = read_text(root / "docs" / page);
    const std::string begin = "<!-- options: " + method + " (generated from the schema; tests/test_docs.cpp) -->\n";
    const std::string table = lowbit::quant::find_method(method).options().markdown(method);
    INFO("docs/" << page << " should hold, between its markers:\n" << begin << table << "<!-- end options -->");
    CHECK(text.find(begin + table + "<!-- end options -->") != std::string::npos);
  }
}
