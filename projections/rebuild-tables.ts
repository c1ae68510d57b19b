import type pg from 'pg';
import { ident } from './projection.js';

/**
 * What a shadow table needs to take a live table's place unnoticed: the live table's index and
 * constraint names (a later migration may name them) and its grants (the platform's role reads and
 * writes it). `CREATE TABLE … (LIKE … INCLUDING ALL)` copies the definitions but names the indexes
 * after the shadow.
 */
interface IndexInfo {
  name: string;
  /** `USING btree (…) WHERE …`: the definition without the index's and the table's names. */
  definition: string;
  unique: boolean;
  primary: boolean;
  /** The constraint the index backs (primary key, unique), if any. */
  constraint: string | null;
}

async function indexesOf(db: pg.PoolClient, table: string): Promise<IndexInfo[]> {
  const { rows } = await db.query<IndexInfo>(
    `SELECT i.relname AS name, regexp_replace(pg_get_indexdef(x.indexrelid), '^.* USING ', 'USING ') AS definition,
            x.indisunique AS unique, x.indisprimary AS primary, c.conname AS constraint
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
       LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
      WHERE x.indrelid = $1::regclass ORDER BY i.relname`,
    [table],
  );
  return rows;
}

export interface NameMapping {
  table: string;
  renames: { kind: 'index' | 'constraint'; from: string; to: string }[];
}

/** Pairs each of the shadow's indexes with the live one of the same definition. */
export async function namesToKeep(db: pg.PoolClient, live: string, shadow: string): Promise<NameMapping> {
  const [liveIndexes, shadowIndexes] = [await indexesOf(db, live), await indexesOf(db, shadow)];
  const unmatched = [...shadowIndexes];
  const renames: NameMapping['renames'] = [];
  for (const l of liveIndexes) {
    const i = unmatched.findIndex((s) => s.definition === l.definition && s.unique === l.unique && s.primary === l.primary);
    if (i < 0) continue;
    const [s] = unmatched.splice(i, 1);
    if (l.constraint && s!.constraint) renames.push({ kind: 'constraint', from: s!.constraint, to: l.constraint });
    else renames.push({ kind: 'index', from: s!.name, to: l.name });
  }
  return { table: live, renames };
}

/** After the swap (the old table gone, the shadow renamed to the live name): its indexes get the old names. */
export async function applyNames(db: pg.PoolClient, mapping: NameMapping): Promise<void> {
  for (const r of mapping.renames) {
    if (r.from === r.to) continue;
    if (r.kind === 'constraint') await db.query(`ALTER TABLE ${ident(mapping.table)} RENAME CONSTRAINT ${ident(r.from)} TO ${ident(r.to)}`);
    else await db.query(`ALTER INDEX ${ident(r.from)} RENAME TO ${ident(r.to)}`);
  }
}

/** Gives the shadow the live table's grants (and owner, when they differ). */
export async function copyGrants(db: pg.PoolClient, live: string, shadow: string): Promise<void> {
  const { rows } = await db.query<{ grantee: string; privilege: string; grantable: boolean }>(
    `SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee,
            a.privilege_type AS privilege, a.is_grantable AS grantable
       FROM pg_class c, aclexplode(c.relacl) a
      WHERE c.oid = $1::regclass AND a.grantee <> c.relowner`,
    [live],
  );
  for (const g of rows) {
    await db.query(`GRANT ${g.privilege} ON ${ident(shadow)} TO ${g.grantee}${g.grantable ? ' WITH GRANT OPTION' : ''}`);
  }
  const owners = await db.query<{ live: string; shadow: string }>(
    'SELECT pg_get_userbyid(l.relowner) AS live, pg_get_userbyid(s.relowner) AS shadow FROM pg_class l, pg_class s WHERE l.oid = $1::regclass AND s.oid = $2::regclass',
    [live, shadow],
  );
  const o = owners.rows[0]!;
  if (o.live !== o.shadow) await db.query(`ALTER TABLE ${ident(shadow)} OWNER TO ${ident(o.live)}`);
}
