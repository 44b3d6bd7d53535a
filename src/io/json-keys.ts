/**
 * Duplicate keys in JSON text. JSON.parse keeps the last of two equal keys silently, so a header
 * naming one tensor twice would load whichever came last; readers call this on text JSON.parse has
 * already accepted (so the scan may assume well-formed JSON) and reject the file. Browser-safe;
 * iterative (no recursion), so deep nesting cannot overflow the stack.
 */

interface Frame { keys: Set<string> | null; path: string; expectKey: boolean }

/**
 * The first key that appears twice in one object of `text` (at any depth), with the path of that
 * object (`a.b`, '' for the top level), or null. `text` must be valid JSON.
 */
export function firstDuplicateKey(text: string): { path: string; key: string } | null {
  const stack: Frame[] = [];
  let i = 0, lastKey = '';
  const readString = (): string => {
    const start = i++;
    let escaped = false;
    while (text[i] !== '"') {
      if (text[i] === '\\') { escaped = true; i++; }
      i++;
    }
    i++;
    return escaped ? JSON.parse(text.slice(start, i)) as string : text.slice(start + 1, i - 1);
  };
  const childPath = (): string => {
    const top = stack[stack.length - 1];
    if (!top) return '';
    const name = top.keys ? lastKey : '[]';
    return top.path ? (top.keys ? `${top.path}.${name}` : `${top.path}${name}`) : name;
  };
  while (i < text.length) {
    const c = text[i];
    const top = stack[stack.length - 1];
    if (c === '"') {
      const s = readString();
      if (top?.keys && top.expectKey) {
        if (top.keys.has(s)) return { path: top.path, key: s };
        top.keys.add(s);
        lastKey = s;
        top.expectKey = false;
      }
    } else if (c === '{' || c === '[') {
      const path = childPath();
      stack.push({ keys: c === '{' ? new Set() : null, path, expectKey: c === '{' });
      i++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i++;
    } else if (c === ',') {
      if (top?.keys) top.expectKey = true;
      i++;
    } else i++;
  }
  return null;
}
