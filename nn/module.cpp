#include "nn/module.h"

#include <algorithm>

#include "core/autograd.h"

namespace shrink::nn {

namespace {

void check_name(const std::string& name, const char* what) {
  SHRINK_CHECK(!name.empty() && name.find('.') == std::string::npos, what, ": name '", name,
               "' must be non-empty and contain no '.'");
}

template <class Entry>
auto find_entry(std::vector<std::pair<std::string, Entry>>& entries, const std::string& name) {
  return std::find_if(entries.begin(), entries.end(),
                      [&](const auto& e) { return e.first == name; });
}
template <class Entry>
auto find_entry(const std::vector<std::pair<std::string, Entry>>& entries,
                const std::string& name) {
  return std::find_if(entries.begin(), entries.end(),
                      [&](const auto& e) { return e.first == name; });
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// A parameter is a leaf: drop any autograd history but keep a gradient the caller attached.
Tensor as_leaf(Tensor value) {
  if (value.grad_fn()) value = value.detach();
  value.requires_grad_(true);
  return value;
}

}  // namespace

// ---- the call path ----

namespace detail {
// Hooks keyed by a registration counter: std::map keeps registration order, and a handle
// finds its hook by id after others were removed.
struct HookLists {
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, Module::ForwardPreHook> pre;
  std::map<std::uint64_t, Module::ForwardHook> post;
  std::map<std::uint64_t, Module::ForwardOverride> overrides;
};
}  // namespace detail

HookHandle::HookHandle(HookHandle&& other) noexcept
    : lists_(std::move(other.lists_)), id_(std::exchange(other.id_, 0)) {}

HookHandle& HookHandle::operator=(HookHandle&& other) noexcept {
  if (this != &other) {
    remove();
    lists_ = std::move(other.lists_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void HookHandle::remove() {
  if (auto lists = lists_.lock()) {
    lists->pre.erase(id_);
    lists->post.erase(id_);
    lists->overrides.erase(id_);
  }
  lists_.reset();
  id_ = 0;
}

namespace {
// Adds `hook` to one of the lists (created on first use) under the next id.
template <class Hook>
HookHandle add_hook(std::shared_ptr<detail::HookLists>& lists, std::map<std::uint64_t, Hook> detail::HookLists::*list,
                    Hook hook) {
  if (!lists) lists = std::make_shared<detail::HookLists>();
  const std::uint64_t id = lists->next_id++;
  ((*lists).*list).emplace(id, std::move(hook));
  return HookHandle(lists, id);
}
}  // namespace

HookHandle Module::register_forward_pre_hook(ForwardPreHook hook) {
  SHRINK_CHECK(hook != nullptr, type_name(), ": register_forward_pre_hook: the hook is empty");
  return add_hook(hooks_, &detail::HookLists::pre, std::move(hook));
}

HookHandle Module::register_forward_hook(ForwardHook hook) {
  SHRINK_CHECK(hook != nullptr, type_name(), ": register_forward_hook: the hook is empty");
  return add_hook(hooks_, &detail::HookLists::post, std::move(hook));
}

HookHandle Module::register_forward_override(ForwardOverride hook) {
  SHRINK_CHECK(hook != nullptr, type_name(), ": register_forward_override: the hook is empty");
  return add_hook(hooks_, &detail::HookLists::overrides, std::move(hook));
}

bool Module::has_hooks() const {
  return hooks_ && !(hooks_->pre.empty() && hooks_->post.empty() && hooks_->overrides.empty());
}

Tensor Module::call(const Tensor& x, const std::vector<Tensor>* extra) {
  // The common case (no hooks, no extra inputs) is one branch on top of forward.
  if (!has_hooks())
    return extra ? forward_with(x, *extra) : forward(x);
  if (!extra) {
    const auto overrides = hooks_->overrides;
    for (const auto& [id, hook] : overrides)
      if (std::optional<Tensor> y = hook(*this, x)) return std::move(*y);
  }
  // Copies, so that a hook may remove itself (or another) while they run.
  const auto pre = hooks_->pre;
  for (const auto& [id, hook] : pre) hook(*this, x);
  Tensor y = extra ? forward_with(x, *extra) : forward(x);
  const auto post = hooks_->post;
  for (const auto& [id, hook] : post) hook(*this, x, y);
  return y;
}

Tensor Module::forward(const Tensor&) {
  fail(type_name(), ": forward is not defined for this module");
}

Tensor Module::forward_with(const Tensor& x, const std::vector<Tensor>& extra) {
  SHRINK_CHECK(extra.empty(), type_name(), ": takes one input, got ", extra.size(),
               " extra input(s)");
  return forward(x);
}

// ---- registration ----

Tensor& Module::register_parameter(const std::string& name, Tensor value) {
  check_name(name, "register_parameter");
  SHRINK_CHECK(value.defined(), "register_parameter: '", name, "' is undefined");
  SHRINK_CHECK(value.dtype() != DType::Int64, "register_parameter: '", name,
               "' must be floating point");
  SHRINK_CHECK(find_entry(params_, name) == params_.end() &&
                   find_entry(buffers_, name) == buffers_.end() &&
                   find_entry(children_, name) == children_.end(),
               "register_parameter: '", name, "' is already registered in ", type_name());
  params_.emplace_back(name, as_leaf(std::move(value)));
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value) {
  check_name(name, "register_buffer");
  SHRINK_CHECK(value.defined(), "register_buffer: '", name, "' is undefined");
  SHRINK_CHECK(find_entry(params_, name) == params_.end() &&
                   find_entry(buffers_, name) == buffers_.end() &&
                   find_entry(children_, name) == children_.end(),
               "register_buffer: '", name, "' is already registered in ", type_name());
  buffers_.emplace_back(name, std::move(value));
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  check_name(name, "register_module");
  SHRINK_CHECK(child != nullptr, "register_module: '", name, "' is null");
  SHRINK_CHECK(find_entry(params_, name) == params_.end() &&
                   find_entry(buffers_, name) == buffers_.end() &&
                   find_entry(children_, name) == children_.end(),
               "register_module: '", name, "' is already registered in ", type_name());
  children_.emplace_back(name, std::move(child));
}

// ---- access ----

Module& Module::owner_of(const std::string& dotted, std::string& leaf, const char* what) {
  return const_cast<Module&>(std::as_const(*this).owner_of(dotted, leaf, what));
}

const Module& Module::owner_of(const std::string& dotted, std::string& leaf,
                               const char* what) const {
  const Module* m = this;
  std::size_t start = 0;
  for (std::size_t dot; (dot = dotted.find('.', start)) != std::string::npos; start = dot + 1) {
    const std::string step = dotted.substr(start, dot - start);
    auto it = find_entry(m->children_, step);
    SHRINK_CHECK(it != m->children_.end(), what, ": no submodule '", step, "' on the path '",
                 dotted, "'");
    m = it->second.get();
  }
  leaf = dotted.substr(start);
  return *m;
}

bool Module::has_parameter(const std::string& name) const {
  std::string leaf;
  try {
    const Module& m = owner_of(name, leaf, "has_parameter");
    return find_entry(m.params_, leaf) != m.params_.end();
  } catch (const Error&) {
    return false;
  }
}

Tensor& Module::parameter(const std::string& name) {
  return const_cast<Tensor&>(std::as_const(*this).parameter(name));
}

const Tensor& Module::parameter(const std::string& name) const {
  std::string leaf;
  const Module& m = owner_of(name, leaf, "parameter");
  auto it = find_entry(m.params_, leaf);
  SHRINK_CHECK(it != m.params_.end(), "parameter: ", m.type_name(), " has no parameter '", leaf,
               "' (looked up '", name, "')");
  return it->second;
}

void Module::set_parameter(const std::string& name, Tensor value) {
  SHRINK_CHECK(value.defined(), "set_parameter: new value for '", name, "' is undefined");
  SHRINK_CHECK(value.dtype() != DType::Int64, "set_parameter: '", name,
               "' must be floating point");
  parameter(name) = as_leaf(std::move(value));
}

bool Module::has_buffer(const std::string& name) const {
  std::string leaf;
  try {
    const Module& m = owner_of(name, leaf, "has_buffer");
    return find_entry(m.buffers_, leaf) != m.buffers_.end();
  } catch (const Error&) {
    return false;
  }
}

Tensor& Module::buffer(const std::string& name) {
  return const_cast<Tensor&>(std::as_const(*this).buffer(name));
}

const Tensor& Module::buffer(const std::string& name) const {
  std::string leaf;
  const Module& m = owner_of(name, leaf, "buffer");
  auto it = find_entry(m.buffers_, leaf);
  SHRINK_CHECK(it != m.buffers_.end(), "buffer: ", m.type_name(), " has no buffer '", leaf,
               "' (looked up '", name, "')");
  return it->second;
}

void Module::set_buffer(const std::string& name, Tensor value) {
  SHRINK_CHECK(value.defined(), "set_buffer: new value for '", name, "' is undefined");
  buffer(name) = std::move(value);
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  std::string leaf;
  const Module& m = owner_of(name, leaf, "child");
  auto it = find_entry(m.children_, leaf);
  SHRINK_CHECK(it != m.children_.end(), "child: ", m.type_name(), " has no submodule '", leaf,
               "' (looked up '", name, "')");
  return it->second;
}

void Module::set_child(const std::string& name, std::shared_ptr<Module> module) {
  SHRINK_CHECK(module != nullptr, "set_child: new module for '", name, "' is null");
  std::string leaf;
  Module& m = owner_of(name, leaf, "set_child");
  auto it = find_entry(m.children_, leaf);
  SHRINK_CHECK(it != m.children_.end(), "set_child: ", m.type_name(), " has no submodule '",
               leaf, "' (looked up '", name, "')");
  module->train(m.training_);
  it->second = std::move(module);
}

// ---- recursive views ----

void Module::collect(const std::string& prefix, bool params, NamedTensors& out) const {
  for (const auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, c] : children_) c->collect(prefix + name + ".", params, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, const Module*>> out{{"", this}};
  for (const auto& [name, c] : children_)
    for (auto& [sub, m] : std::as_const(*c).named_modules())
      out.emplace_back(sub.empty() ? name : name + "." + sub, m);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  for (auto& [name, m] : std::as_const(*this).named_modules())
    out.emplace_back(name, const_cast<Module*>(m));
  return out;
}

// ---- state ----

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& [name, t] : named_parameters()) out.emplace(name, t);
  for (auto& [name, t] : named_buffers()) out.emplace(name, t);
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict, ShapeMismatch on_mismatch) {
  NamedTensors own = named_parameters();
  for (auto& entry : named_buffers()) own.push_back(entry);

  std::vector<std::string> missing, unexpected;
  for (const auto& [name, dst] : own) {
    auto it = state.find(name);
    if (it == state.end()) {
      missing.push_back(name);
      continue;
    }
    SHRINK_CHECK(it->second.defined(), "load_state_dict: '", name, "' is undefined");
    SHRINK_CHECK(on_mismatch == ShapeMismatch::Adopt || it->second.shape() == dst.shape(),
                 "load_state_dict: size mismatch for '", name, "': the model has shape ",
                 shape_str(dst.shape()), ", the state dict has ", shape_str(it->second.shape()));
  }
  for (const auto& entry : state)  // not a structured binding: clang 14 cannot capture one
    if (std::none_of(own.begin(), own.end(), [&](const auto& e) { return e.first == entry.first; }))
      unexpected.push_back(entry.first);
  if (strict) {
    SHRINK_CHECK(missing.empty() && unexpected.empty(), "load_state_dict: ",
                 missing.empty() ? "" : "missing keys: [" + join_names(missing) + "]",
                 !missing.empty() && !unexpected.empty() ? "; " : "",
                 unexpected.empty() ? "" : "unexpected keys: [" + join_names(unexpected) + "]");
  }

  NoGradGuard no_grad;  // copy_ into leaves must not record history
  for (auto& [name, dst] : own) {
    auto it = state.find(name);
    if (it == state.end()) continue;
    Tensor src = it->second.detach();
    if (src.dtype() != dst.dtype()) src = src.to(dst.dtype());
    if (src.shape() != dst.shape()) {  // Adopt (checked above): the slot takes the saved shape
      Tensor resized = Tensor::empty(src.shape(), dst.dtype(), dst.device());
      resized.copy_(src);
      if (has_parameter(name)) set_parameter(name, resized);
      else set_buffer(name, resized);
      continue;
    }
    Tensor target = dst;  // handle sharing the slot's storage
    target.copy_(src);
  }
  for (const auto& [path, m] : std::as_const(*this).named_modules()) {
    try {
      m->check_invariants();
    } catch (const Error& e) {
      fail("load_state_dict: layer '", path.empty() ? "<root>" : path, "' (", m->type_name(), "): ", e.what());
    }
  }
}

void Module::train(bool mode) {
  training_ = mode;
  for (auto& [name, c] : children_) c->train(mode);
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (auto& [name, t] : params_) {
    if (t.device() == device) continue;
    Tensor grad = t.grad();
    Tensor moved = t.detach().to(device);
    if (grad.defined()) moved.set_grad(grad.to(device));
    t = moved.requires_grad_(true);
  }
  for (auto& [name, t] : buffers_)
    if (t.device() != device) t = t.to(device);
  for (auto& [name, c] : children_) c->to(device);
}

void Module::zero_grad() {
  for (auto& [name, t] : params_) t.zero_grad();
  for (auto& [name, c] : children_) c->zero_grad();
}

std::int64_t Module::num_parameters() const {
  std::int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::to_string(std::string& out, const std::string& name, int indent) const {
  out += std::string(indent, ' ') + (name.empty() ? "" : "(" + name + "): ") + type_name() +
         "(" + extra_repr();
  if (children_.empty()) {
    out += ")\n";
    return;
  }
  out += "\n";
  for (const auto& [child_name, c] : children_) c->to_string(out, child_name, indent + 2);
  out += std::string(indent, ' ') + ")\n";
}

std::string Module::to_string() const {
  std::string out;
  to_string(out, "", 0);
  return out;
}

}  // namespace shrink::nn
