// BuildKit's step counter `[stage k/n]`, known from the plan before anything runs: FROM is 1, then each RUN, COPY,
// ADD and WORKDIR; config-only instructions (ENV, LABEL, ARG, …) get no number, as BuildKit shows no vertex for them.
import type { BuildPlan, PlannedStage } from "../frontend/plan.js";
import type { Instruction } from "../frontend/types.js";
import { isLayerStep } from "./step-planner.js";

export interface StepNumbers {
  /** n of `[k/n]`: FROM plus the stage's layer steps. */
  total: number;
  /** k of each layer step (FROM is 1); config-only instructions are absent. */
  numberOf: Map<Instruction, number>;
}

export function stepNumbers(planned: PlannedStage): StepNumbers {
  const numberOf = new Map<Instruction, number>();
  // A stage a --build-context replaces runs none of its instructions.
  if (planned.replacedBy !== undefined) return { total: 1, numberOf };
  for (const instr of planned.stage.instructions) {
    const t = planned.typed.get(instr);
    if (t && isLayerStep(t)) numberOf.set(instr, numberOf.size + 2);
  }
  return { total: numberOf.size + 1, numberOf };
}

/** Steps the build will show: every stage the target needs, FROM and its layer steps (ONBUILD triggers come on top). */
export function plannedStepCount(plan: BuildPlan): number {
  return plan.order.reduce((sum, i) => sum + (plan.stages[i] ? stepNumbers(plan.stages[i]).total : 0), 0);
}
