// For tests of work done a slice at a time: how often the event loop turned meanwhile.

/** Reads every slice, counting the turns of the event loop (setImmediate callbacks run) while it does. */
export async function readCountingTurns(slices: AsyncIterable<string>): Promise<{ slices: string[]; turns: number }> {
  let turns = 0;
  let done = false;
  const count = () => {
    if (done) return;
    turns += 1;
    setImmediate(count);
  };
  setImmediate(count);
  const read: string[] = [];
  for await (const slice of slices) read.push(slice);
  done = true;
  return { slices: read, turns };
}
