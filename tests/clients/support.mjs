// What every client test needs: ferryd started as a child process from a copy
// of a configuration, and stopped with SIGTERM.
//
// Environment:
//   FERRYD        path to the ferryd binary (required)
//   FERRY_CONFIG  configuration to start from (default: <repo>/config/ferry.toml)

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');

// --- prerequisites: fail (not skip) with a message that says what to do ---

export const FERRYD = process.env.FERRYD;
if (!FERRYD) {
  throw new Error(
    'FERRYD is not set: point it at the ferryd binary, e.g. ' +
      'FERRYD=build/host/ferryd node --test tests/clients/openai.test.mjs',
  );
}
if (!existsSync(FERRYD)) {
  throw new Error(`FERRYD=${FERRYD} does not exist: build it first (ninja -C build ferryd)`);
}
export const FERRY_CONFIG = process.env.FERRY_CONFIG || join(repoRoot, 'config', 'ferry.toml');
if (!existsSync(FERRY_CONFIG)) {
  throw new Error(`FERRY_CONFIG=${FERRY_CONFIG} does not exist`);
}

// --- ferryd as a child process ---

export const MODEL = 'ferry-mock';
export const TOKENS_PER_SECOND = 50; // the paced daemon, as in the default configuration
export const LATENCY_MS = 20;
const READY_TIMEOUT_MS = 10_000;
const EXIT_TIMEOUT_MS = 35_000; // longer than the default drain_timeout_ms

// Starts ferryd on an ephemeral port and resolves once it prints
// "listening on HOST:PORT"; the returned object's stop() sends SIGTERM and
// resolves with the exit code.
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export async function startFerryd(configPath) {
  const args = ['--config', configPath, '--listen', '127.0.0.1:0', '--admin-listen', 'off', '--log-level', 'info'];
  const child = spawn(FERRYD, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  const exited = once(child, 'exit').then(([code, signal]) => {
    children.delete(child);
    return { code, signal };
  });

  const addr = await new Promise((resolveAddr, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ferryd did not print "listening on" within ${READY_TIMEOUT_MS} ms; stderr:\n${stderr}`));
    }, READY_TIMEOUT_MS);
    child.stderr.on('data', (text) => {
      stderr += text;
      const m = /listening on (\S+?:\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolveAddr(m[1]);
      }
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${FERRYD}: ${err.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`ferryd exited early (code ${code}, signal ${signal}); stderr:\n${stderr}`));
    });
  });

  return {
    addr,
    baseURL: `http://${addr}/v1`,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`ferryd did not exit within ${EXIT_TIMEOUT_MS} ms of SIGTERM; stderr:\n${stderr}`));
        }, EXIT_TIMEOUT_MS);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

// A copy of the configuration with the mock provider's pacing set.
export function configWithPacing(dir, name, tokensPerSecond, latencyMs) {
  const settings = [`tokens_per_second = ${tokensPerSecond}`, `latency_ms = ${latencyMs}`];
  const out = [];
  let inMock = false;
  let written = false;
  for (const line of readFileSync(FERRY_CONFIG, 'utf8').split('\n')) {
    const section = /^\s*\[([^\]]+)\]/.exec(line);
    if (section) {
      if (inMock && !written) out.push(...settings);
      inMock = section[1].trim() === 'providers.mock';
      written = false;
    } else if (inMock && /^\s*(tokens_per_second|latency_ms)\s*=/.test(line)) {
      if (!written) out.push(...settings);
      written = true;
      continue;
    }
    out.push(line);
  }
  if (inMock && !written) out.push(...settings);
  const path = join(dir, name);
  writeFileSync(path, out.join('\n'));
  return path;
}


// ferry-mock-upstream (the project's mock of the providers' HTTP APIs) as a
// child process; resolves with its address once it listens.
export async function startMockUpstream() {
  const bin = process.env.FERRY_MOCK_UPSTREAM;
  if (!bin || !existsSync(bin)) {
    throw new Error(`FERRY_MOCK_UPSTREAM=${bin} does not exist: build it first (ninja -C build ferry-mock-upstream)`);
  }
  const child = spawn(bin, ['--listen', '127.0.0.1:0', '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.stdout.setEncoding('utf8');
  let out = '';
  const addr = await new Promise((resolveAddr, reject) => {
    const timer = setTimeout(() => reject(new Error(`mock upstream did not start: ${out}`)), READY_TIMEOUT_MS);
    child.stdout.on('data', (text) => {
      out += text;
      const m = /^listening (\S+:\d+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveAddr(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mock upstream exited (code ${code}): ${out}`));
    });
  });
  return {
    addr,
    stop() {
      child.kill('SIGTERM');
      children.delete(child);
    },
  };
}
