import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import { cellStateContract } from '../../contract/cell-state.contract.js';

cellStateContract('memory', async () => {
  const state = createMemoryCellState();
  return { state, other: state, close: async () => undefined };
});
