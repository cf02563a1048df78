// SPDX-License-Identifier: Apache-2.0
// SVG pictures of grids in the ARC colour palette: a task's demonstrations, then each query with
// the model's prediction and the truth side by side (a green or red frame tells right from
// wrong). Plain strings, no dependencies; the files open in any browser.
//
//   data::svg_figure fig("held-out rule: gravity(down)");
//   fig.add_task(t, {predicted_grid});      // demos, then query input | prediction | truth
//   data::save_svg(fig.str(), "pred.svg");
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/error.hpp>
#include <etrm/data/grid.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

// The ARC web viewer's colours for 0..9.
inline constexpr std::array<const char*, 10> arc_palette = {"#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00",
                                                            "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF", "#870C25"};

inline std::string svg_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Rows of captioned grids, laid out left to right, top to bottom.
class svg_figure {
 public:
  struct cell {
    std::string caption;
    grid g;
    std::string frame;  // frame colour; empty: grey
  };
  struct row {
    std::string label;
    std::vector<cell> cells;
  };

  explicit svg_figure(std::string title = {}, int box = 120) : title_(std::move(title)), box_(box) {}

  void add_row(row r) { rows_.push_back(std::move(r)); }

  // One row with every demonstration (input → output), then one row per query: input,
  // prediction (when given; framed green if it equals the known output, red if not) and truth.
  void add_task(const task& t, const std::vector<std::optional<grid>>& predictions = {}, std::size_t max_demos = 99) {
    row demos{"demos" + (t.id.empty() ? std::string() : " of " + t.id), {}};
    for (std::size_t i = 0; i < t.train.size() && i < max_demos; ++i) {
      demos.cells.push_back({"in " + std::to_string(i + 1), t.train[i].input, {}});
      demos.cells.push_back({"out " + std::to_string(i + 1), t.train[i].output, {}});
    }
    add_row(std::move(demos));
    for (std::size_t q = 0; q < t.test.size(); ++q) {
      row r{"query " + std::to_string(q + 1), {}};
      r.cells.push_back({"input", t.test[q].input, {}});
      const bool known = t.test[q].output.rows > 0;
      if (q < predictions.size() && predictions[q]) {
        const grid& p = *predictions[q];
        r.cells.push_back({"prediction", p, known ? (p == t.test[q].output ? "#2ECC40" : "#FF4136") : ""});
      }
      if (known) r.cells.push_back({"truth", t.test[q].output, {}});
      add_row(std::move(r));
    }
  }

  std::string str() const {
    const int pad = 10, caption = 14, label_h = 16, title_h = title_.empty() ? 0 : 24;
    int width = 0, height = title_h + pad;
    for (const auto& r : rows_) {
      width = std::max(width, pad + int(r.cells.size()) * (box_ + pad));
      height += label_h + caption + box_ + pad;
    }
    width = std::max(width, 320);
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
    if (!title_.empty())
      s << "<text x=\"" << pad << "\" y=\"17\" font-size=\"14\" font-weight=\"bold\">" << svg_escape(title_) << "</text>\n";
    int y = title_h + pad;
    for (const auto& r : rows_) {
      s << "<text x=\"" << pad << "\" y=\"" << y + 11 << "\" font-weight=\"bold\">" << svg_escape(r.label) << "</text>\n";
      y += label_h;
      int x = pad;
      for (const auto& c : r.cells) {
        s << "<text x=\"" << x << "\" y=\"" << y + 11 << "\">" << svg_escape(c.caption) << " (" << c.g.rows << "x"
          << c.g.cols << ")</text>\n";
        draw_grid(s, c.g, x, y + caption, c.frame);
        x += box_ + pad;
      }
      y += caption + box_ + pad;
    }
    s << "</svg>\n";
    return s.str();
  }

 private:
  void draw_grid(std::ostringstream& s, const grid& g, int x, int y, const std::string& frame) const {
    const int side = std::max({g.rows, g.cols, 1});
    const int cell = std::max(1, box_ / side);
    s << "<g transform=\"translate(" << x << "," << y << ")\">\n";
    if (g.rows == 0 || g.cols == 0)
      s << "<text x=\"4\" y=\"14\" fill=\"#888\">(empty)</text>\n";
    for (int r = 0; r < g.rows; ++r)
      for (int c = 0; c < g.cols; ++c)
        s << "<rect x=\"" << c * cell << "\" y=\"" << r * cell << "\" width=\"" << cell << "\" height=\"" << cell
          << "\" fill=\"" << arc_palette[std::size_t(std::min<int>(g.at(r, c), 9))] << "\" stroke=\"#555\" stroke-width=\"0.5\"/>\n";
    const int w = std::max(1, g.cols) * cell, h = std::max(1, g.rows) * cell;
    s << "<rect x=\"-1\" y=\"-1\" width=\"" << w + 2 << "\" height=\"" << h + 2 << "\" fill=\"none\" stroke=\""
      << (frame.empty() ? "#999999" : frame) << "\" stroke-width=\"" << (frame.empty() ? 1 : 3) << "\"/>\n</g>\n";
  }

  std::string title_;
  int box_;
  std::vector<row> rows_;
};

// A grid as text, one digit per cell (for terminals and logs).
inline std::string grid_text(const grid& g) {
  std::string s;
  for (int r = 0; r < g.rows; ++r) {
    for (int c = 0; c < g.cols; ++c) s += char('0' + g.at(r, c));
    s += '\n';
  }
  return s;
}

inline void save_svg(const std::string& svg, const std::filesystem::path& file) {
  std::ofstream out(file, std::ios::binary);
  if (!out) throw data_error(file.string() + ": cannot write file");
  out << svg;
  if (!out) throw data_error(file.string() + ": write failed");
}

}  // namespace data
ETRM_END_NAMESPACE
