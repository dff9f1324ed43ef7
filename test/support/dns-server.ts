import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import dnsPacket from 'dns-packet';

/**
 * A tiny authoritative DNS server on a loopback UDP port, for domain proof tests: the test adds
 * and removes TXT, A and AAAA records and Concord's resolver (domainProof.resolvers) asks it.
 * Names it has no record for answer NXDOMAIN; a name with records of another type answers NOERROR
 * with no answer (NODATA); a name marked `silent` gets no answer at all (a resolver timeout).
 */
export interface TestDns {
  /** `127.0.0.1:port`, as domainProof.resolvers takes it. */
  readonly address: string;
  /** Replaces the TXT records of `name`: one record per entry, an entry's array being the record's strings. */
  setTxt(name: string, records: Array<string | string[]>): void;
  setA(name: string, addresses: string[]): void;
  /** Removes every record of `name` (of `type` only, when given). */
  remove(name: string, type?: 'TXT' | 'A' | 'AAAA'): void;
  /** Never answers queries for `name` (until `remove(name)`). */
  silent(name: string): void;
  /** Every question asked so far, as `TYPE name`. */
  readonly asked: string[];
  close(): Promise<void>;
}

type RecordType = 'TXT' | 'A' | 'AAAA';

export async function startDnsServer(): Promise<TestDns> {
  const zone = new Map<string, Map<RecordType, Array<string | string[]>>>();
  const mute = new Set<string>();
  const asked: string[] = [];
  const key = (name: string) => name.toLowerCase().replace(/\.$/, '');
  const socket = dgram.createSocket('udp4');

  socket.on('message', (message, remote) => {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return;
    }
    const question = query.questions?.[0];
    if (!question) return;
    const name = key(question.name);
    asked.push(`${question.type} ${name}`);
    if (mute.has(name)) return;
    const records = zone.get(name);
    const found = records?.get(question.type as RecordType) ?? [];
    const answers = found.map((data) => {
      if (question.type === 'TXT') return { type: 'TXT' as const, name: question.name, ttl: 1, data: typeof data === 'string' ? [data] : data };
      return { type: question.type as 'A' | 'AAAA', name: question.name, ttl: 1, data: data as string };
    });
    const response = dnsPacket.encode({
      type: 'response',
      id: query.id ?? 0,
      // Authoritative; rcode 3 (NXDOMAIN) when the name has no record at all.
      flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | (records ? 0 : 3),
      questions: [question],
      answers: answers as dnsPacket.Answer[],
    });
    socket.send(response, remote.port, remote.address);
  });

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = socket.address() as AddressInfo;

  const set = (name: string, type: RecordType, values: Array<string | string[]>) => {
    let records = zone.get(key(name));
    if (!records) zone.set(key(name), (records = new Map()));
    records.set(type, values);
  };

  return {
    address: `127.0.0.1:${port}`,
    asked,
    setTxt: (name, records) => set(name, 'TXT', records),
    setA: (name, addresses) => set(name, 'A', addresses),
    remove(name, type) {
      mute.delete(key(name));
      if (!type) return void zone.delete(key(name));
      const records = zone.get(key(name));
      records?.delete(type);
      if (records?.size === 0) zone.delete(key(name));
    },
    silent: (name) => void mute.add(key(name)),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
