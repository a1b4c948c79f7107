import { ManualClock } from '../../../fakes/manual-clock.js';
import { createMemoryRunStore } from '../../../../src/runbooks/engine/memory-run-store.js';
import { runStoreContract } from '../../../contract/run-store.contract.js';

runStoreContract('memory', async () => {
  const clock = new ManualClock();
  const store = createMemoryRunStore({ clock });
  return { store, other: store, wait: (ms) => clock.advance(ms), close: async () => undefined };
});
