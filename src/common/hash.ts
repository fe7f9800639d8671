// A string hash every layer may use (balancers, sticky cookies, spreading active checks).

/** FNV-1a: stable across processes, so every worker sends a client to the same backend. */
export function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
