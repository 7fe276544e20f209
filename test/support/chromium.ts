/**
 * Headless Chromium for browser tests: Debian's `chromium` package driven by playwright-core
 * (which downloads no browser of its own).
 *
 * When /usr/bin/chromium is missing: as root (CI runs as root on Debian 12) it is installed with
 * `apt-get update` and `apt-get install -y --no-install-recommends chromium`; otherwise the
 * test fails with the command to run. Each launch gets a new, empty profile directory, removed
 * on close, and the flags that keep Chromium from calling home (on a closed network those
 * connections fail, many at a time, and slow every start).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const INSTALL_HINT = 'apt-get update && apt-get install -y --no-install-recommends chromium';
/** apt-get on a slow mirror; bounded so that a hung install fails the run instead of stalling it. */
const APT_TIMEOUT_MS = 10 * 60_000;

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function apt(args: string[]): void {
  // Waits for the dpkg lock (another install may be running) rather than failing at once.
  const out = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', ...args], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    encoding: 'utf8',
    timeout: APT_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (out.status !== 0) {
    const why = out.error?.message ?? `exit ${out.status ?? out.signal}`;
    throw new Error(`apt-get ${args.join(' ')} failed (${why}): ${(out.stderr ?? '').trim().split('\n').slice(-5).join('\n')}`);
  }
}

/**
 * Returns the Chromium executable, installing Debian's package first when it is missing and
 * this process is root. Call it from a `beforeAll` with a timeout of a few minutes.
 */
export function ensureChromium(): string {
  if (isExecutable(CHROMIUM_PATH)) return CHROMIUM_PATH;
  if (process.getuid?.() !== 0) {
    throw new Error(`Chromium is not installed (${CHROMIUM_PATH} is missing) and this user cannot install it: as root, run ${INSTALL_HINT}`);
  }
  apt(['update']);
  apt(['install', '-y', '--no-install-recommends', 'chromium']);
  if (!isExecutable(CHROMIUM_PATH)) throw new Error(`apt-get installed chromium, but ${CHROMIUM_PATH} is still missing`);
  return CHROMIUM_PATH;
}

/** A running headless Chromium with its own empty profile. */
export interface HeadlessChromium {
  readonly context: BrowserContext;
  /** Closes the browser and removes its profile directory. */
  close(): Promise<void>;
}

/** Launches Debian's Chromium headless (installing it first when needed, see {@link ensureChromium}). */
export async function launchChromium(): Promise<HeadlessChromium> {
  const executablePath = ensureChromium();
  const userDataDir = mkdtempSync(join(tmpdir(), 'cdk-sai-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 30_000,
      viewport: { width: 1100, height: 900 },
    });
    return {
      context,
      close: async () => {
        try {
          await context.close();
        } finally {
          rmSync(userDataDir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw err;
  }
}
