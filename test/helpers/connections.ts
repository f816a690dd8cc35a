import fs from 'node:fs';

/** The inodes of the sockets process `pid` holds open (from its fds in /proc). */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const socket = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (socket) inodes.add(socket[1]!);
    } catch {
      // closed between the listing and the read: not open any more
    }
  }
  return inodes;
}

/** `a.b.c.d:port` of /proc/net/tcp's hex form (IPv6 addresses are left in hex). */
function address(hex: string): string {
  const [host = '', port = ''] = hex.split(':');
  const ip =
    host.length === 8
      ? (host.match(/../g) ?? [])
          .reverse()
          .map((b) => parseInt(b, 16))
          .join('.')
      : host;
  return `${ip}:${parseInt(port, 16)}`;
}

/**
 * Established TCP connections of process `pid` to `port` (Postgres), from the kernel's TCP tables:
 * every connection the process holds, whatever pool or client opened it and whatever it calls
 * itself. Each is `local -> remote (inode)`, for a failure to show.
 */
export function connectionListTo(pid: number, port: number): string[] {
  const inodes = socketInodes(pid);
  // By inode: the kernel prints these tables a page per read, and while other processes open and
  // close sockets it can print lines again (seen with another Jest worker running). Each socket is
  // counted once.
  const found = new Map<string, string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const [, local, remote, state, , , , , , inode] = line.trim().split(/\s+/);
      if (state === '01' && parseInt(remote?.split(':')[1] ?? '', 16) === port && inodes.has(inode!))
        found.set(inode!, `${address(local!)} -> ${address(remote!)} (${inode})`);
    }
  }
  return [...found.values()];
}

export const connectionsTo = (pid: number, port: number): number => connectionListTo(pid, port).length;
