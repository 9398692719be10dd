#include "agent/reload.h"

#include "agent/protocol/json_writer.h"
#include "platform/json_escape.h"

namespace edgespool::agent {

namespace {

std::string JsonArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    platform::AppendJsonString(&out, items[i]);
  }
  return out + "]";
}

std::string Join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

}  // namespace

ReloadPlan PlanReload(const Config& running, const LoadResult& next) {
  ReloadPlan plan;
  if (!next.ok()) {
    plan.verdict = ReloadPlan::Verdict::kRefuseInvalid;
    for (const ConfigProblem& p : next.problems) plan.problems.push_back(p.ToString());
    return plan;
  }
  for (const ConfigChange& c : DiffConfig(running, next.config)) {
    (c.live ? plan.live : plan.restart).push_back(c.key);
  }
  if (!plan.restart.empty()) {
    plan.verdict = ReloadPlan::Verdict::kRefuseRestart;
  } else {
    plan.verdict =
        plan.live.empty() ? ReloadPlan::Verdict::kUnchanged : ReloadPlan::Verdict::kApply;
  }
  return plan;
}

ReloadOutcome DescribeReload(const ReloadPlan& plan, const std::vector<std::string>& extra_live,
                             const std::string& failure, const std::string& source,
                             const std::string& digest) {
  ReloadOutcome out;
  std::vector<std::string> changed = plan.live;
  changed.insert(changed.end(), extra_live.begin(), extra_live.end());
  const char* outcome = "unchanged";
  if (plan.verdict == ReloadPlan::Verdict::kRefuseInvalid) {
    outcome = "refused";
    out.message = "the new configuration is invalid: " + Join(plan.problems, "; ");
  } else if (plan.verdict == ReloadPlan::Verdict::kRefuseRestart) {
    outcome = "refused";
    out.message = "changed keys need a restart: " + Join(plan.restart, ", ") +
                  " (restart the agent to apply them)";
  } else if (!failure.empty()) {
    outcome = "refused";
    out.message = failure;
  } else if (!changed.empty()) {
    outcome = "reloaded";
    out.ok = out.changed = true;
    out.message = "applied: " + Join(changed, ", ");
  } else {
    out.ok = true;
    out.message = "no changes";
  }
  protocol::JsonObjectWriter w;
  out.json = std::move(w.Str("outcome", outcome)
                           .Str("message", out.message)
                           .Raw("changed", JsonArray(changed))
                           .Raw("restart", JsonArray(plan.restart))
                           .Raw("problems", JsonArray(plan.problems))
                           .Str("source", source)
                           .Str("config_digest", digest))
                 .Finish();
  return out;
}

}  // namespace edgespool::agent
