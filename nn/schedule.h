// Learning-rate schedules, as closed forms of the epoch (or step) index t = 0, 1, ...:
// the caller sets opt.set_lr(schedule->lr_at(base_lr, t)) before each epoch (or step).
//
// String syntax (parse_schedule), `total` being the run's length in the same unit:
//   constant                  lr = base
//   step:S[:G]                lr = base * G^floor(t / S)                 (G defaults to 0.1)
//   multistep:M1,M2,...[:G]   lr = base * G^(number of milestones <= t)  (G defaults to 0.1)
//   cosine[:T[:MIN]]          lr = MIN + (base - MIN) * (1 + cos(pi * t / T)) / 2 for t <= T,
//                             MIN after; T defaults to total (minus warm-up), MIN to 0
//   warmup:W[+SCHEDULE]       linear warm-up: lr = base * (t + 1) / W for t < W, then
//                             SCHEDULE (default constant) evaluated at t - W, i.e. the
//                             schedule starts when warm-up ends
// e.g. "cosine", "step:30:0.1", "multistep:30,60:0.1", "warmup:5+cosine".
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace shrink::nn {

class Schedule {
 public:
  virtual ~Schedule() = default;
  virtual double lr_at(double base_lr, std::int64_t t) const = 0;
  virtual std::string describe() const = 0;  // in the parser's syntax
};

class ConstantSchedule : public Schedule {
 public:
  double lr_at(double base_lr, std::int64_t) const override { return base_lr; }
  std::string describe() const override { return "constant"; }
};

// torch.optim.lr_scheduler.StepLR
class StepSchedule : public Schedule {
 public:
  StepSchedule(std::int64_t step_size, double gamma);
  double lr_at(double base_lr, std::int64_t t) const override;
  std::string describe() const override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

// torch.optim.lr_scheduler.MultiStepLR
class MultiStepSchedule : public Schedule {
 public:
  MultiStepSchedule(std::vector<std::int64_t> milestones, double gamma);
  double lr_at(double base_lr, std::int64_t t) const override;
  std::string describe() const override;

 private:
  std::vector<std::int64_t> milestones_;
  double gamma_;
};

// torch.optim.lr_scheduler.CosineAnnealingLR's closed form (SGDR, Loshchilov & Hutter 2017,
// eq. 5 without restarts), held at eta_min after T_max instead of rising again.
class CosineSchedule : public Schedule {
 public:
  CosineSchedule(std::int64_t t_max, double eta_min = 0);
  double lr_at(double base_lr, std::int64_t t) const override;
  std::string describe() const override;

 private:
  std::int64_t t_max_;
  double eta_min_;
};

// Linear warm-up over `warmup` units, then `after` shifted to start at t = warmup.
class WarmupSchedule : public Schedule {
 public:
  WarmupSchedule(std::int64_t warmup, std::shared_ptr<const Schedule> after);
  double lr_at(double base_lr, std::int64_t t) const override;
  std::string describe() const override;

 private:
  std::int64_t warmup_;
  std::shared_ptr<const Schedule> after_;
};

// Parses the syntax above; bad strings throw shrink::Error listing the valid forms.
// `total` (epochs or steps of the run) is needed only by a cosine without T.
std::shared_ptr<const Schedule> parse_schedule(const std::string& text, std::int64_t total = 0);

}  // namespace shrink::nn
