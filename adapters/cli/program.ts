import { Command } from 'commander';
import { registerDbCommands } from './db.js';
import { registerEventCommands } from './events.js';
import { registerProjectionCommands } from './projections.js';
import { registerServeCommand } from './serve.js';
import { registerSetupCommands } from './setup.js';
import { registerDeliveryCommands } from './deliveries.js';
import { registerAgentRunCommand } from './agent-run.js';
import { registerKubeCommands } from './kube.js';
import { registerAuthCommands } from './auth.js';
import { registerKeyCommands } from './keys.js';

export function buildProgram(): Command {
  const program = new Command('codex-k8s')
    .description('codex-k8s: GitHub events in, AI-agent runs on Kubernetes out')
    // A usage error is one line like any other failure: commander's suggestion and the hint join its message.
    .configureOutput({ outputError: (message, write) => write(`${message.trim().replace(/\s*\n\s*/g, ' ')} (run with --help for usage)\n`) })
    .exitOverride();
  registerDbCommands(program);
  registerEventCommands(program);
  registerProjectionCommands(program);
  registerServeCommand(program);
  registerSetupCommands(program);
  registerDeliveryCommands(program);
  registerAgentRunCommand(program);
  registerKubeCommands(program);
  registerAuthCommands(program);
  registerKeyCommands(program);
  return program;
}
