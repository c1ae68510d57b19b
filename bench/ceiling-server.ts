/**
 * The ceiling bench:api prints beside its figures: a bare node:http server that, per request, makes
 * two primary-key lookups with node-postgres (the statement `pgbench -S` runs, on the same replica)
 * and answers a fixed body (the API's real first page, read from a file). No framework, no token, no
 * rows turned into JSON: what any Node.js answer that reads the database twice costs on this
 * machine, measured under the same load generator in the same run.
 *
 * node dist/bench/ceiling-server.js <database-url> <body-file>; prints its port on stdout.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';

const [url, bodyFile] = process.argv.slice(2);
if (!url || !bodyFile) throw new Error('usage: ceiling-server <database-url> <body-file>');
const body = readFileSync(bodyFile);
const pool = new pg.Pool({ connectionString: url, max: 16 });
const ACCOUNTS = 1_000_000; // pgbench -i -s 10
const lookup = () => pool.query({ name: 'pk', text: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1', values: [1 + Math.floor(Math.random() * ACCOUNTS)] });

const server = createServer((_req, res) => {
  lookup()
    .then(lookup)
    .then(() => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
      res.end(body);
    })
    .catch((error: unknown) => {
      res.writeHead(500).end(String(error));
    });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.once('SIGTERM', () => {
  server.close();
  void pool.end();
});
