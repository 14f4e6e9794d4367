// Column output like Go's tabwriter with runc's settings (min width 12, padding 3).
#pragma once

#include <string>
#include <vector>

namespace sandlock::cli {

class Table {
public:
    explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    std::string render() const {
        std::vector<size_t> width;
        for (const auto& r : rows_)
            for (size_t i = 0; i < r.size(); ++i) {
                if (width.size() <= i) width.push_back(12);
                width[i] = std::max(width[i], r[i].size() + 3);
            }
        std::string out;
        for (const auto& r : rows_) {
            for (size_t i = 0; i < r.size(); ++i) {
                out += r[i];
                if (i + 1 < r.size()) out += std::string(width[i] - r[i].size(), ' ');
            }
            out += "\n";
        }
        return out;
    }

private:
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace sandlock::cli
