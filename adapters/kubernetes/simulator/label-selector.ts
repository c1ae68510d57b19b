/**
 * Kubernetes label selectors in their string form: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
 * `a notin (x,y)`, `a` (exists) and `!a` (does not exist), joined by commas.
 */
export type Requirement =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

export class SelectorError extends Error {}

function splitTopLevel(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

export function parseLabelSelector(selector: string | null | undefined): Requirement[] {
  if (!selector) return [];
  return splitTopLevel(selector).map((part): Requirement => {
    let m = /^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
    if (m) return { key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()).filter(Boolean) };
    m = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(part);
    if (m) return { key: m[1]!, op: m[2] === '!=' ? 'neq' : 'eq', value: m[3]! };
    m = /^(!?)\s*([^\s!=(),]+)$/.exec(part);
    if (m) return { key: m[2]!, op: m[1] ? 'notexists' : 'exists' };
    throw new SelectorError(`unable to parse requirement: ${part}`);
  });
}

export function matchesLabels(requirements: Requirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return requirements.every((r) => {
    const has = Object.hasOwn(l, r.key);
    switch (r.op) {
      case 'eq': return has && l[r.key] === r.value;
      case 'neq': return !has || l[r.key] !== r.value;
      case 'in': return has && r.values.includes(l[r.key]!);
      case 'notin': return !has || !r.values.includes(l[r.key]!);
      case 'exists': return has;
      case 'notexists': return !has;
    }
  });
}

/** Field selectors: only equality and inequality on metadata.name, metadata.namespace and status.phase. */
export function parseFieldSelector(selector: string | null | undefined): (obj: any) => boolean {
  if (!selector) return () => true;
  const checks = splitTopLevel(selector).map((part) => {
    const m = /^(metadata\.name|metadata\.namespace|status\.phase)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw new SelectorError(`field label not supported: ${part}`);
    const [, field, op, value] = m;
    const read = (obj: any) => field!.split('.').reduce((o, k) => o?.[k], obj) ?? '';
    return (obj: any) => (op === '!=' ? read(obj) !== value : read(obj) === value);
  });
  return (obj) => checks.every((c) => c(obj));
}
