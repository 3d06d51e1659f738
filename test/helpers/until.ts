/** Polls `ok` every 20 ms until it holds; throws naming `what` after `ms`. */
export async function until(what: string, ok: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const since = Date.now();
  while (!(await ok())) {
    if (Date.now() - since > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
