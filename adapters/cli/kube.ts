import type { Command } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { projectRoot } from '../paths.js';
import { outcomes, startKubeSimulator, type Outcome } from '../kubernetes/simulator/index.js';
import { CliError } from './errors.js';

export function registerKubeCommands(program: Command): void {
  const kube = program.command('kube').description('Kubernetes helpers');
  kube
    .command('simulate')
    .description('serve a simulated Kubernetes API on 127.0.0.1 and write a kubeconfig for it')
    .option('--port <n>', 'port to listen on (0: any free port)', '0')
    .option('--kubeconfig <file>', 'where to write the kubeconfig', join(projectRoot, '.codexk8s', 'kubeconfig'))
    .option('--outcome <outcome>', `what every Job does: ${outcomes.join(', ')}`, 'succeed')
    .option('--run-seconds <s>', 'how long a simulated pod runs before its outcome', '1')
    .action(async (options: { port: string; kubeconfig: string; outcome: string; runSeconds: string }) => {
      const port = Number(options.port);
      if (!/^\d+$/.test(options.port) || port > 65535) throw new CliError('--port must be a whole number from 0 to 65535');
      if (!(outcomes as readonly string[]).includes(options.outcome)) throw new CliError(`--outcome must be one of ${outcomes.join(', ')}`);
      const runSeconds = Number(options.runSeconds);
      if (!options.runSeconds.trim() || !Number.isFinite(runSeconds) || runSeconds < 0 || runSeconds > 86_400) {
        throw new CliError('--run-seconds must be a number of seconds from 0 to 86400');
      }
      const file = resolve(options.kubeconfig);
      let simulator;
      try {
        simulator = await startKubeSimulator({ port, outcome: options.outcome as Outcome, runSeconds });
      } catch (error) {
        throw new CliError(`cannot listen on 127.0.0.1:${port}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      try {
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, simulator.kubeconfig(), { mode: 0o600 });
      } catch (error) {
        await simulator.close();
        throw new CliError(`--kubeconfig: cannot write ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      }
      process.stderr.write(`Kubernetes simulator on ${simulator.url} (Jobs ${options.outcome} after ${runSeconds}s); Ctrl-C stops it\n`);
      process.stdout.write(`export KUBECONFIG=${file}\n`);
      await new Promise<void>((done) => {
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
      });
      await simulator.close();
    });
}
