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

/**
 * Established TCP connections of process `pid` to `port` (Postgres), from the kernel's TCP tables:
 * every connection the process holds, whatever pool or client opened it and whatever it calls itself.
 */
export function connectionsTo(pid: number, port: number): number {
  const inodes = socketInodes(pid);
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const [, , remote, state, , , , , , inode] = line.trim().split(/\s+/);
      if (state === '01' && parseInt(remote?.split(':')[1] ?? '', 16) === port && inodes.has(inode!)) count++;
    }
  }
  return count;
}
