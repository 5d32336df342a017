import fc from "fast-check";
import { watchEventLoop } from "./event-loop.js";
import { answersIn, tallyAnswers } from "./tally.js";

/** Fixed, so a failure replays exactly: rerun and the same inputs come in the same order. */
export const SEED = 424_242;

/** The longest the platform may block its event loop while handling one hostile request. */
export const MAX_STALL_MS = 200;

// One run is one exchange (or two); far longer means a hung handler, reported as such.
const RUN_TIMEOUT_MS = 30_000;
// Runs and shrinking together (shrinking replays requests): past this the property fails,
// with the smallest counterexample found so far if it had found one.
const PROPERTY_BUDGET_MS = 60_000;

/** The largest stall each property measured, for the report at the end of the file. */
export const largestStalls = new Map<string, number>();

export interface HostileProperty<Input, Outcome> {
  name: string;
  inputs: fc.Arbitrary<Input>;
  numRuns: number;
  /** What the platform is asked; the event loop is watched while this runs, and only then. */
  exchange(input: NoInfer<Input>): Promise<Outcome>;
  /** Throws when the outcome is wrong for the input (see answers.ts). */
  check(input: NoInfer<Input>, outcome: NoInfer<Outcome>): void | Promise<void>;
}

/**
 * Runs a property with the fixed seed: each run must pass `check` and keep
 * the event loop's longest delay within MAX_STALL_MS during its exchange. A
 * failure is reported by fast-check with the shrunk counterexample.
 */
export async function checkHostileProperty<Input, Outcome>(property: HostileProperty<Input, Outcome>): Promise<void> {
  const loop = watchEventLoop();
  const tally = tallyAnswers();
  try {
    await fc.assert(
      fc.asyncProperty(property.inputs, async (input) => {
        loop.reset();
        const outcome = await property.exchange(input);
        const stallMs = loop.longestSinceReset();
        for (const answer of answersIn(outcome)) tally.add(answer);
        // The answer first: a 5xx says more about an input than the stall it may also have caused.
        await property.check(input, outcome);
        if (stallMs > MAX_STALL_MS) throw new Error(`the event loop stalled ${stallMs.toFixed(0)} ms (at most ${MAX_STALL_MS} ms allowed)`);
      }),
      {
        seed: SEED,
        numRuns: property.numRuns,
        timeout: RUN_TIMEOUT_MS,
        interruptAfterTimeLimit: PROPERTY_BUDGET_MS,
        markInterruptAsFailure: true,
      },
    );
  } finally {
    loop.stop();
    largestStalls.set(property.name, loop.longestOverall);
    console.log(`[property] ${property.name}: largest event-loop delay ${loop.longestOverall.toFixed(1)} ms; answers ${tally.summary()}`);
  }
}
