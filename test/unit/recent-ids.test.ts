import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecentIds } from '../../src/store/recent-ids.ts';

describe('RecentIds', () => {
  it('keeps the most recently noted entries, forgetting the oldest first', () => {
    const ids = new RecentIds(2);
    ids.note('a', '1');
    ids.note('b', '2');
    ids.note('a', '1'); // noted again: the newest now
    ids.note('c', '3');
    assert.equal(ids.size, 2);
    assert.equal(ids.get('b'), undefined, 'the oldest went');
    assert.equal(ids.get('a'), '1');
    assert.equal(ids.get('c'), '3');
    ids.note('a', '4');
    ids.note('d', '5');
    assert.equal(ids.get('a'), '4', 'a new id replaces the old one and counts as newest');
    assert.equal(ids.get('c'), undefined);
  });
});
