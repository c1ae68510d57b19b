import type { Context } from 'koa';
import { GlobalPosition } from '../../ports/position.js';
import { invalidArgument } from './errors.js';

export const positionHeader = 'X-Codex-Position';
export const minPositionHeader = 'X-Codex-Min-Position';

/** A command's answer names the position it wrote, in the body and in a header. */
export function answerWithPosition(ctx: Context, status: number, body: Record<string, unknown>, position: GlobalPosition | undefined): void {
  ctx.status = status;
  if (position) ctx.set(positionHeader, position.toString());
  ctx.body = position ? { ...body, position: position.toString() } : body;
}

/** The position a query must wait for, if the client sent one. */
export function minPositionOf(ctx: Context): GlobalPosition | undefined {
  const raw = ctx.get(minPositionHeader);
  if (!raw) return undefined;
  try {
    return GlobalPosition.parse(raw);
  } catch (error) {
    throw invalidArgument(`${minPositionHeader}: ${(error as Error).message}`);
  }
}
