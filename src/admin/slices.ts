// Large admin answers (/metrics, /routes, /haproxy?stats;csv) written a slice at a time, the event
// loop serving traffic between two. At 10,000 backends each was made in one piece: /metrics held
// the loop for 150-500 ms, /routes (4.3 MB, which the status page asks for every 2 s) 100-150 ms,
// and every proxied request waited as long.
import { setImmediate } from 'node:timers/promises';

/** Text written between two turns of the event loop (a few milliseconds' making). */
const SLICE_CHARS = 64 * 1024;

/** `pieces`, joined into slices of about SLICE_CHARS; the pieces are made as the slices are written. */
export async function* sliced(pieces: Iterable<string>, turn: () => Promise<unknown> = setImmediate): AsyncGenerator<string> {
  let out = '';
  for (const piece of pieces) {
    out += piece;
    if (out.length >= SLICE_CHARS) {
      yield out;
      out = '';
      await turn();
    }
  }
  if (out !== '') yield out;
}

function indented(value: unknown, pad: string): string {
  return (JSON.stringify(value, null, 2) ?? 'null').replace(/\n/g, `\n${pad}`);
}

function isList(member: unknown): member is Iterable<unknown> {
  return typeof member === 'object' && member !== null && Symbol.iterator in member;
}

/**
 * `JSON.stringify(value, null, 2) + '\n'`, in pieces. A member of `value` that is a list (an array,
 * or any iterable, such as a generator making its items as they are written) is written an item at
 * a time, as an array.
 */
export function* prettyJson(value: Record<string, unknown>): Generator<string> {
  let first = true;
  yield '{';
  for (const [key, member] of Object.entries(value)) {
    if (member === undefined || typeof member === 'function' || typeof member === 'symbol') continue; // as JSON.stringify leaves them out
    yield `${first ? '' : ','}\n  ${JSON.stringify(key)}: `;
    first = false;
    if (!isList(member)) {
      yield indented(member, '  ');
      continue;
    }
    let items = 0;
    for (const item of member) {
      yield `${items === 0 ? '[' : ','}\n    ${indented(item, '    ')}`;
      items += 1;
    }
    yield items === 0 ? '[]' : '\n  ]';
  }
  yield `${first ? '' : '\n'}}\n`;
}
