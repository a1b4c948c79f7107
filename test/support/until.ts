/**
 * Polls `probe` in real time until it returns something other than undefined or false, and returns it;
 * fails naming `what` after `timeoutMs`. For tests against real servers and real timers (tests on a
 * manual clock advance the clock instead). A probe that throws counts as "not yet" when
 * `ignoreErrors` is set (a server being restarted).
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; everyMs?: number; ignoreErrors?: boolean } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    let value: T | undefined | false;
    try {
      value = await probe();
    } catch (error) {
      if (!options.ignoreErrors) throw error;
      value = undefined;
    }
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 25));
  }
}
