#pragma once
// What a checkpoint keeps besides the state vector (DESIGN §3): named arrays of doubles (counts
// and indices below 2^53 are exact) and texts, written by the integration loop, the model's event
// state, the observers and the writer, and read back on --resume. Names are '/'-separated paths
// ("model/dtp/closed_in", "observer/arrivals"), unique within a checkpoint.
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "sim/core/errors.hpp"

namespace lf {

class Snapshot {
 public:
  void put(const std::string& name, std::vector<double> values) { arrays_[name] = std::move(values); }
  void put(const std::string& name, double value) { arrays_[name] = {value}; }
  void put_text(const std::string& name, std::string text) { texts_[name] = std::move(text); }
  // A list of arrays of different lengths: `name`/lengths and `name`/values.
  void put_nested(const std::string& name, const std::vector<std::vector<double>>& arrays) {
    std::vector<double> lengths, values;
    for (const auto& a : arrays) {
      lengths.push_back(static_cast<double>(a.size()));
      values.insert(values.end(), a.begin(), a.end());
    }
    put(name + "/lengths", std::move(lengths));
    put(name + "/values", std::move(values));
  }

  bool has(const std::string& name) const { return arrays_.count(name) + texts_.count(name) > 0; }
  // Throws InputError naming the entry when the checkpoint lacks it (a checkpoint of another
  // version or model).
  const std::vector<double>& get(const std::string& name) const {
    const auto it = arrays_.find(name);
    if (it == arrays_.end()) missing(name);
    return it->second;
  }
  double scalar(const std::string& name) const {
    const auto& v = get(name);
    if (v.size() != 1) missing(name);
    return v.front();
  }
  std::size_t count(const std::string& name) const { return static_cast<std::size_t>(scalar(name)); }
  const std::string& text(const std::string& name) const {
    const auto it = texts_.find(name);
    if (it == texts_.end()) missing(name);
    return it->second;
  }
  std::vector<std::vector<double>> nested(const std::string& name) const {
    const auto& lengths = get(name + "/lengths");
    const auto& values = get(name + "/values");
    std::vector<std::vector<double>> out;
    std::size_t at = 0;
    for (const double n : lengths) {
      const auto len = static_cast<std::size_t>(n);
      if (at + len > values.size()) missing(name + "/values");
      out.emplace_back(values.begin() + static_cast<std::ptrdiff_t>(at),
                       values.begin() + static_cast<std::ptrdiff_t>(at + len));
      at += len;
    }
    return out;
  }

  const std::map<std::string, std::vector<double>>& arrays() const noexcept { return arrays_; }
  const std::map<std::string, std::string>& texts() const noexcept { return texts_; }

 private:
  [[noreturn]] static void missing(const std::string& name) {
    throw InputError("the checkpoint has no valid entry '" + name +
                     "' (written by another version of learnflow, or damaged): run again without --resume");
  }
  std::map<std::string, std::vector<double>> arrays_;
  std::map<std::string, std::string> texts_;
};

}  // namespace lf
