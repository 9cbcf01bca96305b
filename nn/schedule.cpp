#include "core/strings.h"
#include "nn/schedule.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <sstream>

#include "core/error.h"

namespace shrink::nn {

namespace {

constexpr const char* kForms =
    "constant | step:S[:G] | multistep:M1,M2,...[:G] | cosine[:T[:MIN]] | "
    "warmup:W[+SCHEDULE] (e.g. cosine, step:30:0.1, multistep:30,60:0.1, warmup:5+cosine)";

template <class T>
T number(const std::string& text, const std::string& whole) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  SHRINK_CHECK(!text.empty() && ec == std::errc() && end == text.data() + text.size(),
               "schedule: '", text, "' in '", whole, "' is not a number; valid: ", kForms);
  return value;
}

std::string format(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::shared_ptr<const Schedule> parse_base(const std::string& text, std::int64_t total,
                                           const std::string& whole) {
  const auto f = split(text, ':');
  const std::string& kind = f[0];
  if (kind == "constant" && f.size() == 1) return std::make_shared<ConstantSchedule>();
  if (kind == "step" && (f.size() == 2 || f.size() == 3))
    return std::make_shared<StepSchedule>(number<std::int64_t>(f[1], whole),
                                          f.size() == 3 ? number<double>(f[2], whole) : 0.1);
  if (kind == "multistep" && (f.size() == 2 || f.size() == 3)) {
    std::vector<std::int64_t> milestones;
    for (const auto& m : split(f[1], ',')) milestones.push_back(number<std::int64_t>(m, whole));
    return std::make_shared<MultiStepSchedule>(milestones,
                                               f.size() == 3 ? number<double>(f[2], whole) : 0.1);
  }
  if (kind == "cosine" && f.size() <= 3) {
    const std::int64_t t_max = f.size() >= 2 ? number<std::int64_t>(f[1], whole) : total;
    SHRINK_CHECK(t_max > 0, "schedule: '", whole,
                 "' needs a positive T (give cosine:T, or the run's length); valid: ", kForms);
    return std::make_shared<CosineSchedule>(t_max, f.size() == 3 ? number<double>(f[2], whole) : 0);
  }
  fail("schedule: cannot parse '", whole, "'; valid: ", kForms);
}

}  // namespace

StepSchedule::StepSchedule(std::int64_t step_size, double gamma)
    : step_size_(step_size), gamma_(gamma) {
  SHRINK_CHECK(step_size > 0, "StepSchedule: step_size must be > 0, got ", step_size);
  SHRINK_CHECK(std::isfinite(gamma) && gamma > 0, "StepSchedule: gamma must be finite and > 0, got ", gamma);
}

double StepSchedule::lr_at(double base_lr, std::int64_t t) const {
  return base_lr * std::pow(gamma_, static_cast<double>(std::max<std::int64_t>(t, 0) / step_size_));
}

std::string StepSchedule::describe() const {
  return "step:" + std::to_string(step_size_) + ":" + format(gamma_);
}

MultiStepSchedule::MultiStepSchedule(std::vector<std::int64_t> milestones, double gamma)
    : milestones_(std::move(milestones)), gamma_(gamma) {
  SHRINK_CHECK(!milestones_.empty() && std::is_sorted(milestones_.begin(), milestones_.end()) &&
                   std::adjacent_find(milestones_.begin(), milestones_.end()) == milestones_.end(),
               "MultiStepSchedule: milestones must be non-empty and strictly increasing");
  SHRINK_CHECK(std::isfinite(gamma) && gamma > 0, "MultiStepSchedule: gamma must be finite and > 0, got ", gamma);
}

double MultiStepSchedule::lr_at(double base_lr, std::int64_t t) const {
  // PyTorch decays at each milestone reached: bisect_right(milestones, t) decays.
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), t) - milestones_.begin();
  return base_lr * std::pow(gamma_, static_cast<double>(passed));
}

std::string MultiStepSchedule::describe() const {
  std::string out = "multistep:";
  for (std::size_t i = 0; i < milestones_.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(milestones_[i]);
  }
  return out + ":" + format(gamma_);
}

CosineSchedule::CosineSchedule(std::int64_t t_max, double eta_min) : t_max_(t_max), eta_min_(eta_min) {
  SHRINK_CHECK(t_max > 0, "CosineSchedule: T_max must be > 0, got ", t_max);
  SHRINK_CHECK(std::isfinite(eta_min) && eta_min >= 0, "CosineSchedule: eta_min must be finite and >= 0, got ", eta_min);
}

double CosineSchedule::lr_at(double base_lr, std::int64_t t) const {
  const double progress = static_cast<double>(std::clamp<std::int64_t>(t, 0, t_max_)) / t_max_;
  const double lr = eta_min_ + (base_lr - eta_min_) * (1 + std::cos(std::numbers::pi * progress)) / 2;
  // The closed form lies between base_lr and eta_min; rounding can leave that range when
  // eta_min dwarfs base_lr (cosine:10:1e308 gave a negative rate), so it is clamped back.
  return std::clamp(lr, std::min(base_lr, eta_min_), std::max(base_lr, eta_min_));
}

std::string CosineSchedule::describe() const {
  return "cosine:" + std::to_string(t_max_) + ":" + format(eta_min_);
}

WarmupSchedule::WarmupSchedule(std::int64_t warmup, std::shared_ptr<const Schedule> after)
    : warmup_(warmup), after_(after ? std::move(after) : std::make_shared<ConstantSchedule>()) {
  SHRINK_CHECK(warmup > 0, "WarmupSchedule: warm-up length must be > 0, got ", warmup);
}

double WarmupSchedule::lr_at(double base_lr, std::int64_t t) const {
  if (t < warmup_) return base_lr * static_cast<double>(std::max<std::int64_t>(t, 0) + 1) / warmup_;
  return after_->lr_at(base_lr, t - warmup_);
}

std::string WarmupSchedule::describe() const {
  return "warmup:" + std::to_string(warmup_) + "+" + after_->describe();
}

std::shared_ptr<const Schedule> parse_schedule(const std::string& text, std::int64_t total) {
  if (text.rfind("warmup:", 0) == 0) {
    const auto plus = text.find('+');
    const std::string w = text.substr(7, plus == std::string::npos ? std::string::npos : plus - 7);
    const auto warmup = number<std::int64_t>(w, text);
    SHRINK_CHECK(warmup > 0, "schedule: warm-up length in '", text, "' must be > 0; valid: ", kForms);
    if (plus == std::string::npos) return std::make_shared<WarmupSchedule>(warmup, nullptr);
    return std::make_shared<WarmupSchedule>(
        warmup, parse_base(text.substr(plus + 1), total > 0 ? total - warmup : 0, text));
  }
  return parse_base(text, total, text);
}

}  // namespace shrink::nn
