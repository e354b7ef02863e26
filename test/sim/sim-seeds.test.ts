/**
 * CI gate: 500 simulator seeds (safety phase with faults, liveness phase
 * without) must all pass. A failing seed prints its replay command.
 */
import t from 'tap';
import { runSeed } from './simulator.js';

const SEEDS = Number.parseInt(process.env['SIM_SEEDS'] ?? '500', 10);
const FROM = Number.parseInt(process.env['SIM_FROM'] ?? '1', 10);

t.test(`${SEEDS} seeds from ${FROM} pass every checker`, async (t) => {
  const failed: number[] = [];
  for (let seed = FROM; seed < FROM + SEEDS; seed++) {
    const result = runSeed({ seed });
    if (!result.ok) {
      failed.push(seed);
      t.fail(`seed ${seed}: ${result.failures.join('; ')} — replay: npm run sim -- --seeds 1 --from ${seed} --verbose`);
    }
  }
  t.same(failed, [], `${SEEDS - failed.length} passed, ${failed.length} failed`);
});
