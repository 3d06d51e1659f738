import { execFile, spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { promisify } from 'node:util';
import { repoRoot } from './shared.js';

const exec = promisify(execFile);

/**
 * Several "hosts" on one LAN: a network namespace per host, each with one veth link (`eth0`)
 * into a Linux bridge that lives in a namespace of its own, so nothing touches the root
 * namespace's interfaces or routes. Addresses (A.B.C.1, .2, ... in the order the hosts are
 * given) exist only inside the namespaces. Each Lan has its own bridge, so two Lans cannot
 * reach each other even on the same subnet; the subnet still differs per Lan, so a stray log
 * line names one Lan. Needs root and iproute2.
 *
 * shape() acts on the bridge's end of a host's link, whose egress is what the host downloads:
 * `tbf` for the rate, `netem` for delay and loss where the kernel has it (netemMissing()).
 */
export interface Shape {
  /** Download rate of the host, bytes per second. */
  rateBytesPerSec?: number;
  /** Added one way (towards the host), so once to every round trip; ignored without netem. */
  delayMs?: number;
  /** Packets towards the host dropped, percent; ignored without netem. */
  lossPct?: number;
}

export interface Lan {
  readonly hosts: readonly string[];
  ip(host: string): string;
  ns(host: string): string;
  /** `ip netns exec NS command ...args`, without a shell, from the repository root. */
  spawnIn(host: string, command: string, args: string[], opts?: { env?: NodeJS.ProcessEnv; stdio?: StdioOptions }): ChildProcess;
  /** Replaces the host's previous shape; `{}` removes it. */
  shape(host: string, s: Shape): Promise<void>;
  /** The host's link down: packets to it vanish without an answer, its own sends fail. */
  cut(host: string): Promise<void>;
  restore(host: string): Promise<void>;
  /** Kills what spawnIn started and deletes every namespace; idempotent, also run at exit. */
  remove(): Promise<void>;
}

let made = 0;

/** Why namespaces, bridges or tc cannot be used here, or undefined when they can. */
export function lanMissing(): string | undefined {
  const probe = `nmfa-lanprobe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.error) return `no iproute2 here (${add.error.message}): multi-host network tests skipped`;
  if (add.status !== 0) return `ip netns add failed (${add.stderr.trim()}; needs root): multi-host network tests skipped`;
  try {
    const bridge = spawnSync('ip', ['-n', probe, 'link', 'add', 'br0', 'type', 'bridge'], { encoding: 'utf8' });
    if (bridge.status !== 0) return `cannot make a Linux bridge (${bridge.stderr.trim()}): multi-host network tests skipped`;
    const tc = spawnSync('tc', ['-n', probe, 'qdisc', 'show'], { encoding: 'utf8' });
    if (tc.error || tc.status !== 0) return `tc does not work here (${tc.error?.message ?? tc.stderr.trim()}): multi-host network tests skipped`;
    return undefined;
  } finally {
    spawnSync('ip', ['netns', 'del', probe]);
  }
}

let netemProbe: { reason: string | undefined } | undefined;

/** Why `tc netem` (delay, loss) is unavailable here, or undefined when it works; probed once. */
export function netemMissing(): string | undefined {
  if (netemProbe) return netemProbe.reason;
  const probe = `nmfa-netemprobe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.error || add.status !== 0) {
    netemProbe = { reason: `no network namespaces to probe netem in (${add.error?.message ?? add.stderr.trim()})` };
    return netemProbe.reason;
  }
  const r = spawnSync('tc', ['-n', probe, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'], { encoding: 'utf8' });
  spawnSync('ip', ['netns', 'del', probe]);
  netemProbe = { reason: r.status === 0 ? undefined : `tc netem is not available in this kernel (${(r.error?.message ?? r.stderr).trim()}; sch_netem not built or loadable): no delay or loss shaping` };
  return netemProbe.reason;
}

const HOST = /^[a-z][a-z0-9-]{0,30}$/;

export async function makeLan(hosts: string[], o: { subnet?: string } = {}): Promise<Lan> {
  if (hosts.length === 0 || hosts.length > 250) throw new Error(`makeLan needs 1 to 250 hosts, got ${hosts.length}`);
  for (const h of hosts) if (!HOST.test(h)) throw new Error(`makeLan: host name "${h}" must be lower-case letters, digits and dashes`);
  if (new Set(hosts).size !== hosts.length) throw new Error(`makeLan: host names repeat in ${hosts.join(',')}`);
  const n = made++;
  const tag = `${process.pid}-${n}`;
  const prefix = subnetPrefix(o.subnet, n);
  const bridgeNs = `nmfa-${tag}-bridge`;
  const names = new Map(hosts.map((h, i) => [h, { ns: `nmfa-${tag}-${h}`, ip: `${prefix}.${i + 1}`, port: `p${i + 1}` }]));
  const children = new Set<ChildProcess>();
  const ip = (...args: string[]) => exec('ip', args);
  const tc = (...args: string[]) => exec('tc', ['-n', bridgeNs, ...args]);
  const all = [bridgeNs, ...[...names.values()].map((h) => h.ns)];
  let removed = false;
  const removeSync = () => {
    if (removed) return;
    removed = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const ns of all) spawnSync('ip', ['netns', 'del', ns]);
  };
  process.once('exit', removeSync);
  const remove = async () => {
    process.off('exit', removeSync);
    if (removed) return;
    removed = true;
    await Promise.all([...children].map(kill));
    for (const ns of all) await ip('netns', 'del', ns).catch(() => undefined);
  };
  try {
    await ip('netns', 'add', bridgeNs);
    await ip('-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', bridgeNs, 'link', 'set', 'br0', 'up');
    for (const h of names.values()) {
      await ip('netns', 'add', h.ns);
      // Made inside the namespaces, so the interface names cannot clash with anyone's.
      await ip('link', 'add', 'eth0', 'netns', h.ns, 'type', 'veth', 'peer', 'name', h.port, 'netns', bridgeNs);
      await ip('-n', bridgeNs, 'link', 'set', h.port, 'master', 'br0');
      await ip('-n', bridgeNs, 'link', 'set', h.port, 'up');
      await ip('-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0');
      await ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', h.ns, 'link', 'set', 'lo', 'up');
    }
  } catch (err) {
    await remove();
    throw err;
  }
  const host = (h: string) => {
    const found = names.get(h);
    if (!found) throw new Error(`no host "${h}" on this LAN (hosts: ${hosts.join(', ')})`);
    return found;
  };
  return {
    hosts: [...hosts],
    ip: (h) => host(h).ip,
    ns: (h) => host(h).ns,
    spawnIn(h, command, args, opts = {}) {
      const child = spawn('ip', ['netns', 'exec', host(h).ns, command, ...args], {
        cwd: repoRoot,
        env: { ...process.env, ...opts.env },
        stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    async shape(h, s) {
      const dev = host(h).port;
      await tc('qdisc', 'del', 'dev', dev, 'root').catch(() => undefined);
      const netem = (s.delayMs || s.lossPct) && !netemMissing() ? ['netem', ...(s.delayMs ? ['delay', `${s.delayMs}ms`] : []), ...(s.lossPct ? ['loss', `${s.lossPct}%`] : [])] : undefined;
      const tbf = s.rateBytesPerSec ? tbfArgs(s.rateBytesPerSec) : undefined;
      if (netem) await tc('qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', ...netem);
      if (tbf) await tc('qdisc', 'add', 'dev', dev, ...(netem ? ['parent', '1:', 'handle', '2:'] : ['root', 'handle', '1:']), ...tbf);
    },
    cut: async (h) => void (await ip('-n', host(h).ns, 'link', 'set', 'eth0', 'down')),
    restore: async (h) => void (await ip('-n', host(h).ns, 'link', 'set', 'eth0', 'up')),
    remove,
  };
}

/** `A.B.C.0/24` → `A.B.C`; by default 10.214.N with N from the pid and the Lan's number. */
function subnetPrefix(subnet: string | undefined, n: number): string {
  if (subnet === undefined) return `10.214.${(process.pid * 7 + n) % 254 + 1}`;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(subnet);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) throw new Error(`makeLan: subnet must be A.B.C.0/24, got "${subnet}"`);
  return m.slice(1, 4).join('.');
}

/**
 * tbf for `rate` bytes/s (tc's `bps` is bytes per second). The bucket holds 20 ms of the
 * rate but at least 64 KiB (veth hands tbf GSO packets of up to 64 KiB), and the queue half a
 * second of it, so TCP sees a steady rate rather than bursts of drops.
 */
function tbfArgs(rate: number): string[] {
  const r = Math.round(rate);
  const burst = Math.max(64 << 10, Math.round(r / 50));
  return ['tbf', 'rate', `${r}bps`, 'burst', String(burst), 'limit', String(burst + Math.round(r / 2))];
}

async function kill(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGKILL');
  await exited;
}
