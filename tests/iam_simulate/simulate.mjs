// Decides each simulation read from stdin (a JSON array) with @cloud-copilot/iam-simulate, an IAM
// policy evaluator of its own that knows each action's resource types and condition keys from AWS's
// Service Authorization Reference; prints one decision per simulation, or why it decided nothing: a
// validation error, or context keys the action does not take.
import { readFileSync } from "node:fs";
import { runSimulation } from "@cloud-copilot/iam-simulate";

const simulations = JSON.parse(readFileSync(0, "utf8"));
const decisions = [];
for (const simulation of simulations) {
  const response = await runSimulation(
    { serviceControlPolicies: [], resourceControlPolicies: [], ...simulation },
    {},
  );
  // A context key the action does not take is dropped, and a condition on it decided without it.
  const ignored = (response.results ?? [response.result ?? {}]).flatMap(
    (result) => result.ignoredContextKeys ?? [],
  );
  if (response.resultType === "error") {
    decisions.push({ error: response.errors });
  } else if (ignored.length > 0) {
    decisions.push({ error: { ignoredContextKeys: [...new Set(ignored)] } });
  } else {
    decisions.push({ decision: response.overallResult });
  }
}
process.stdout.write(JSON.stringify(decisions));
