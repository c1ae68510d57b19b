import type { Projection } from './projection.js';
import { agentRuns } from './read-models/agent-runs.js';
import { projectMembers, projects, repositories, users } from './read-models/rbac.js';
import { learningFeedback, slots } from './read-models/runs-support.js';

/** Every read model the platform keeps, by name. */
export const allProjections: readonly Projection[] = [users, projects, projectMembers, repositories, agentRuns, slots, learningFeedback];

export function projectionNamed(name: string): Projection | undefined {
  return allProjections.find((p) => p.name === name);
}
