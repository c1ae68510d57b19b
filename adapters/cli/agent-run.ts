import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { agent, AgentRunError, agentOutcome, agentRunSettings, checkout, publish } from '../agent/steps.js';
import { CliError } from './errors.js';

/**
 * `codex-k8s agent-run <step>`: what the run's pod runs, one step per container (checkout, agent,
 * publish). publish waits for the agent to finish, or on SIGTERM (a cancel, the deadline) pushes
 * what the agent committed so far as a checkpoint. Its result is the pod's termination message.
 */
export function registerAgentRunCommand(program: Command): void {
  program
    .command('agent-run <step>')
    .description("a run's pod: checkout (clone, branch, the issue's text), agent (codex exec, commit), publish (push, pull request)")
    .action(async (step: string) => {
      if (!['checkout', 'agent', 'publish'].includes(step)) throw new CliError('the step is checkout, agent or publish');
      try {
        await runStep(step);
      } catch (error) {
        // The container's termination message: the platform records it as the run's failure reason.
        // Only messages of our own: another error's text may hold a URL with the token.
        const known = error instanceof AgentRunError || error instanceof CliError;
        report(JSON.stringify({ error: known ? (error as Error).message.slice(0, 1000) : `the ${step} step failed` }));
        throw error;
      }
    });
}

let reported = false;
/** Writes the container's termination message, once: publish's result stands over its later error. */
function report(message: string): void {
  if (reported) return;
  reported = true;
  try {
    writeFileSync(process.env.CODEXK8S_TERMINATION_LOG ?? '/dev/termination-log', message);
  } catch {
    // not in a pod
  }
}

async function runStep(step: string): Promise<void> {
  const settings = agentRunSettings();
  if (step === 'checkout') {
    // As a container's PID 1, Node.js ignores SIGTERM unless it handles it: stopped, checkout just ends.
    process.once('SIGTERM', () => process.exit(143));
    return checkout(settings);
  }
  if (step === 'agent') return agent(settings);
  let stopped = false;
  const stop = () => (stopped = true);
  process.once('SIGTERM', stop);
  // In the container's log; from here a stop pushes a checkpoint.
  process.stderr.write('codex-k8s: publish waits for the agent\n');
  while (!stopped && !agentOutcome(settings)) await new Promise((r) => setTimeout(r, 200));
  // A failed agent's commits so far are kept as a checkpoint, and the pod fails with the reason.
  const outcome = stopped ? null : agentOutcome(settings);
  const failed = outcome && !outcome.ok ? outcome.error ?? 'no reason given' : null;
  const result = await publish(settings, { checkpoint: stopped || failed !== null });
  const message = JSON.stringify(result);
  // The platform reads the pod's termination message (PR number, branch, commit, checkpoint or not).
  report(message);
  process.stdout.write(`${message}\n`);
  if (failed !== null) throw new CliError(`the agent failed (${failed}); what it committed is pushed as a checkpoint`);
}
