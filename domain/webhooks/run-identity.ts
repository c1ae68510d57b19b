import { v5 as uuidv5 } from 'uuid';

// Our own namespace, so these ids never equal a v5 id that another system derives from the same text.
const RUN_NAMESPACE = 'be4ac4e9-b711-40f6-a197-25cf5a94ef74';

/**
 * The run a labelling starts, named by the labelling itself: repository, issue or PR number, label,
 * the label event's time and which labelling of the label it is (labellingOf). Two deliveries of
 * the same labelling (a redelivery under a new GUID, or the org hook and the repository hook) name
 * the same run, and the run's stream can be created only once, so they cannot start two runs.
 */
export function runIdOf(labelling: { repository: string; number: number; label: string; labeledAt: string; labelling?: number }): string {
  // The first labelling keeps the name it always had; each one after a removal gets its own.
  const again = labelling.labelling ? `+${labelling.labelling}` : '';
  return uuidv5(`${labelling.repository}#${labelling.number}:${labelling.label}@${labelling.labeledAt}${again}`, RUN_NAMESPACE);
}

/**
 * The run a staff member's manual start names by its correlation id in its project: the same id
 * again is the same run. Scoped to the project, so a key used in one project neither collides with
 * nor reveals a run of another.
 */
export function manualRunIdOf(projectId: string, correlationId: string): string {
  return uuidv5(`manual:${projectId.toLowerCase()}:${correlationId}`, RUN_NAMESPACE);
}
