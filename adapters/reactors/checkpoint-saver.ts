import type { GlobalPosition } from '../../ports/position.js';

type Save = (to: GlobalPosition, reacted: number, error: string | null) => Promise<unknown>;

/**
 * A reactor's checkpoint, saved no later than each move asks: a move due now is saved at once; one
 * due later rides with the moves after it and is saved by a timer when the first of them falls due,
 * even while the reactor waits on a slow reaction; `flush` saves what is pending (idle, stopping).
 * Saves go one at a time, in order, so the checkpoint never moves back; a failed save fails the next
 * move or flush, which ends the runner (its lease is then taken again, and it resumes from what was saved).
 */
export function checkpointSaver(save: Save) {
  let pending: { to: GlobalPosition; reacted: number; error: string | null } | undefined;
  let savedAt = Date.now();
  let dueAt: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let saving: Promise<void> = Promise.resolve();
  let failed: { error: unknown } | undefined;

  function flush(): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    dueAt = undefined;
    const move = pending;
    pending = undefined;
    if (move) {
      savedAt = Date.now();
      saving = saving.then(() => save(move.to, move.reacted, move.error)).then(
        () => {},
        (error: unknown) => {
          failed ??= { error };
          throw error;
        },
      );
    }
    return saving;
  }

  /** Moves the checkpoint to `to`, saved within `withinMs` of the last save (so at most that long after now). */
  async function moveWithin(withinMs: number, to: GlobalPosition, reacted: number, error: string | null): Promise<void> {
    if (failed) throw failed.error;
    pending = { to, reacted: reacted + (pending?.reacted ?? 0), error: error ?? pending?.error ?? null };
    const due = savedAt + withinMs;
    if (Date.now() >= due) return flush();
    if (dueAt === undefined || due < dueAt) {
      clearTimeout(timer);
      dueAt = due;
      // Its failure is kept for the next move or flush to throw.
      timer = setTimeout(() => void flush().catch(() => {}), due - Date.now());
      timer.unref();
    }
  }

  /** Stops the timer (the runner is ending); what is pending stays unsaved unless flushed first. */
  const stop = () => clearTimeout(timer);

  return { moveWithin, flush, stop };
}

export type CheckpointSaver = ReturnType<typeof checkpointSaver>;
