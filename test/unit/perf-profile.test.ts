import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePerfScript, summarisePerf } from '../../bench/perf-profile.ts';

// `perf script` output of a node process recorded with --perf-basic-prof-only-functions: one
// sample a block, a frame a line, innermost first (addresses and objects as perf prints them).
const SCRIPT = `MainThread 100   1.000000:     500000 cpu-clock: 
	    7f00000001 __memset_avx512_unaligned_erms+0x1 (/usr/lib/x86_64-linux-gnu/libc.so.6)
	    7f00000002 JS:+'processChunkSync node:zlib:416:26+0x10 (/tmp/perf-100.map)
	    7f00000003 JS:^seal file:///repo/src/secrets/index.ts:106:9+0x20 (/tmp/perf-100.map)
	    7f00000004 JS:+ file:///repo/node_modules/oidc-provider/lib/provider.js:224:26+0x30 (/tmp/perf-100.map)

MainThread 100   1.000500:     500000 cpu-clock: 
	    7f00000005 v8::internal::Scavenger::ScavengeObject+0x5 (/repo/node_modules/node/bin/node)
	    7f00000006 JS:~parse file:///repo/src/store/redis.ts:862:23+0x1 (/tmp/perf-100.map)

MainThread 100   1.001000:     500000 cpu-clock: 
	    7f00000007 epoll_pwait+0x2 (/usr/lib/x86_64-linux-gnu/libc.so.6)

V8Worker 101   1.001500:     1000000 cpu-clock: 
	    7f00000008 v8::internal::ConcurrentMarking::RunMajor+0x1 (/repo/node_modules/node/bin/node)
`;

describe('bench/perf-profile.ts: CPU by module from perf script', () => {
  it('charges native work to the innermost JavaScript frame, GC and other threads apart, in CPU time', () => {
    const samples = parsePerfScript(SCRIPT);
    assert.equal(samples.length, 4);
    assert.deepEqual(samples[0]!.frames.slice(0, 2), ['__memset_avx512_unaligned_erms', "JS:+'processChunkSync node:zlib:416:26"]);
    const summary = summarisePerf(samples);
    assert.equal(summary.totalMs, 2.5);
    const mod = (name: string) => summary.byModule.find((m) => m.module === name);
    assert.deepEqual(mod('node:zlib'), { module: 'node:zlib', selfMs: 0.5, inclusiveMs: 0.5 });
    assert.equal(mod('oidc-provider')?.selfMs, 0);
    assert.equal(mod('oidc-provider')?.inclusiveMs, 0.5);
    assert.equal(mod('(garbage collector)')?.selfMs, 0.5);
    assert.equal(mod('(native)')?.selfMs, 0.5);
    assert.equal(mod('(thread V8Worker)')?.selfMs, 1);
    assert.equal(summary.byFunction[0]!.name, '(thread V8Worker)');
    assert.ok(summary.byFunction.some((f) => f.name === 'processChunkSync node:zlib:416' && f.selfMs === 0.5));
    assert.equal(summarisePerf(samples, { thread: 'MainThread' }).totalMs, 1.5);
  });
});
