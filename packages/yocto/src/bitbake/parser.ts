/**
 * A BitBake metadata parser that follows bitbake's own line handling
 * (lib/bb/parse/parse_py/ConfHandler.py and BBHandler.py): lines are
 * right-stripped, `\` continues a line, `#` starts a comment, functions run to
 * a `}` alone on a line, python `def` blocks run while lines are indented.
 * It never throws and runs in linear time per line, so hostile input is safe.
 */
import type { AssignmentOperator } from '../defs.js';

/** `conf`: .conf files (ConfHandler); `recipe`: .bb, .bbappend, .bbclass, .inc (BBHandler). */
export type FileKind = 'conf' | 'recipe';

export type DiagnosticCode =
  | 'UNPARSED_LINE'
  | 'NOT_ALLOWED_IN_CONF'
  | 'OLD_OVERRIDE_SYNTAX'
  | 'EMPTY_OVERRIDE'
  | 'UNCLOSED_FUNCTION'
  | 'CONTINUATION_AT_EOF'
  | 'COMMENT_IN_CONTINUATION'
  | 'UNBALANCED_EXPANSION'
  | 'TAB_IN_PYTHON';

export interface Diagnostic {
  line: number;
  code: DiagnosticCode;
  message: string;
}

export interface Assignment {
  type: 'assignment';
  line: number;
  exported: boolean;
  /** The whole left-hand side without the flag, e.g. `RDEPENDS:${PN}:append`. */
  variable: string;
  /** The variable name before any override, e.g. `RDEPENDS`. */
  base: string;
  /** Override parts, in order, excluding the operation (`${PN}` in `RDEPENDS:${PN}:append`). */
  overrides: string[];
  /** `:append`, `:prepend` or `:remove`, if present. */
  operation: 'append' | 'prepend' | 'remove' | undefined;
  /** Overrides after the operation (the condition of an append: `foo` in `A:append:foo`). */
  conditions: string[];
  flag: string | undefined;
  operator: AssignmentOperator;
  quote: '"' | "'";
  value: string;
}

export interface FunctionDef {
  type: 'function';
  line: number;
  endLine: number;
  /** `__anonymous` for `python () {`. */
  name: string;
  python: boolean;
  fakeroot: boolean;
  body: string[];
}

export interface PythonDef {
  type: 'def';
  line: number;
  endLine: number;
  name: string;
  body: string[];
}

export interface Directive {
  type:
    | 'include'
    | 'include_all'
    | 'require'
    | 'inherit'
    | 'inherit_defer'
    | 'export'
    | 'unset'
    | 'addtask'
    | 'deltask'
    | 'addhandler'
    | 'EXPORT_FUNCTIONS'
    | 'addpylib';
  line: number;
  /** The rest of the line after the keyword (for unset with a flag: `VAR[flag]`). */
  argument: string;
}

export type Statement = Assignment | FunctionDef | PythonDef | Directive;

export interface ParseResult {
  statements: Statement[];
  diagnostics: Diagnostic[];
}

const VAR_CHAR = /[a-zA-Z0-9\-_+.${}/~:]/;
const FLAG_FIRST = /[a-zA-Z0-9\-_+.]/;
const FLAG_CHAR = /[a-zA-Z0-9\-_+.@]/;
const OPERATORS: readonly AssignmentOperator[] = [':=', '??=', '?=', '+=', '=+', '=.', '.=', '='];
const isSpace = (ch: string | undefined) => ch !== undefined && /\s/.test(ch);

/** Counts `ch` in `s`. */
function count(s: string, ch: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s[i] === ch) n++;
  return n;
}

interface RawAssignment {
  exported: boolean;
  variable: string;
  flag: string | undefined;
  operator: AssignmentOperator;
  quote: '"' | "'";
  value: string;
}

/** Tries the remainder of bitbake's __config_regexp__ with the variable ending at `end`. */
function tryRest(s: string, start: number, end: number, exported: boolean): RawAssignment | undefined {
  let pos = end;
  let flag: string | undefined;
  if (s[pos] === '[') {
    let q = pos + 1;
    if (!FLAG_FIRST.test(s[q] ?? '')) return undefined;
    q++;
    while (q < s.length && FLAG_CHAR.test(s[q] as string)) q++;
    if (s[q] !== ']') return undefined;
    flag = s.slice(pos + 1, q);
    pos = q + 1;
  }
  while (isSpace(s[pos])) pos++;
  for (const op of OPERATORS) {
    if (!s.startsWith(op, pos)) continue;
    let v = pos + op.length;
    while (isSpace(s[v])) v++;
    const rest = s.slice(v);
    const quote = rest[0];
    if (quote !== '"' && quote !== "'") continue;
    // bitbake's negative lookaheads: exactly three quotes of that kind is refused.
    if (count(rest, quote) === 3 && rest.endsWith(quote)) continue;
    if (rest.length < 2 || !rest.endsWith(quote)) continue;
    return { exported, variable: s.slice(start, end), flag, operator: op, quote, value: rest.slice(1, -1) };
  }
  return undefined;
}

function matchAssignmentFrom(s: string, start: number, exported: boolean): RawAssignment | undefined {
  let runEnd = start;
  while (runEnd < s.length && VAR_CHAR.test(s[runEnd] as string)) runEnd++;
  if (runEnd === start) return undefined;
  // The variable is matched lazily, but an operator can only start at the last
  // character of the run (`:=`, `+=`, `.=`) or right after it.
  for (const end of [runEnd - 1, runEnd]) {
    if (end <= start) continue;
    const m = tryRest(s, start, end, exported);
    if (m) return m;
  }
  return undefined;
}

/** bitbake's __config_regexp__: `[export ]VAR[flag] op "value"`. */
export function matchAssignment(s: string): RawAssignment | undefined {
  const ex = /^export\s+/.exec(s);
  if (ex) {
    const m = matchAssignmentFrom(s, ex[0].length, true);
    if (m) return m;
  }
  return matchAssignmentFrom(s, 0, false);
}

/** Splits `A:b:append:c` into its base, overrides, operation and conditions. */
export function splitVariable(variable: string) {
  const parts = variable.split(':');
  const base = parts[0] ?? '';
  const overrides: string[] = [];
  const conditions: string[] = [];
  let operation: Assignment['operation'];
  for (const p of parts.slice(1)) {
    if (operation === undefined && (p === 'append' || p === 'prepend' || p === 'remove')) operation = p;
    else if (operation === undefined) overrides.push(p);
    else conditions.push(p);
  }
  return { base, overrides, operation, conditions };
}

const OLD_OVERRIDE = /_(append|prepend|remove)(?![A-Za-z0-9])|_(append|prepend|remove)_/;
/** Old-style overrides other than append/prepend/remove: `_${PN}`, `_pn-x`, `_class-native`, ... */
const OLD_CONDITIONAL =
  /_\$\{PN\}|_pn-|_class-(native|nativesdk|target|cross)|_virtclass-|_libc-|_task-|_forcevariable|_df-/;

/** Why `name` uses the override syntax bitbake refuses since 3.4, or undefined. */
export function oldOverrideProblem(name: string): string | undefined {
  if (name.startsWith('__anon_')) return undefined;
  if (name.includes('_append') || name.includes('_prepend') || name.includes('_remove')) {
    const m = OLD_OVERRIDE.exec(name);
    const op = m?.[1] ?? m?.[2] ?? 'append';
    return `'${name}' uses the old override syntax '_${op}'; write ':${op}'`;
  }
  const m = OLD_CONDITIONAL.exec(name);
  if (m) return `'${name}' uses the old override syntax '${m[0]}'; write ':${m[0].slice(1)}'`;
  return undefined;
}

/** Checks that every `${` has its `}` (inline python `${@...}` may nest braces). */
export function expansionBalanced(value: string): boolean {
  let depth = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '$' && value[i + 1] === '{') {
      depth++;
      i++;
    } else if (ch === '{' && depth > 0) depth++;
    else if (ch === '}' && depth > 0) depth--;
  }
  return depth === 0;
}

const FUNC_START = /^((?:(?:python(?=[\s(])|fakeroot(?=\s))\s*)*)([\w.\-+{}$:]+)?\s*\(\s*\)\s*\{$/;
const DEF = /^def\s+(\w+).*:/;
const PY_BODY = /^(\s+.*)?$|^#/;

/** ConfHandler's directives, in its order: [pattern, statement type, only in .conf (addpylib)]. */
const SIMPLE_DIRECTIVES: ReadonlyArray<readonly [RegExp, Directive['type'], boolean]> = [
  [/^include\s+(.+)/, 'include', false],
  [/^include_all\s+(.+)/, 'include_all', false],
  [/^require\s+(.+)/, 'require', false],
  [/^export\s+([a-zA-Z0-9\-_+.${}/~]+)$/, 'export', false],
  [/^unset\s+([a-zA-Z0-9\-_+.${}/~]+)$/, 'unset', false],
  [/^unset\s+([a-zA-Z0-9\-_+.${}/~]+\[[a-zA-Z0-9\-_+.][a-zA-Z0-9\-_+.@]+\])$/, 'unset', false],
  [/^addpylib\s+(.+)\s+(.+)/, 'addpylib', true],
];

/** BBHandler's directives after functions and defs, in its order. */
const RECIPE_DIRECTIVES: ReadonlyArray<readonly [RegExp, Directive['type']]> = [
  [/^EXPORT_FUNCTIONS\s+(.+)/, 'EXPORT_FUNCTIONS'],
  [/^addtask\s+(\w+.*)/, 'addtask'],
  [/^deltask\s+(.+)/, 'deltask'],
  [/^addhandler\s+(.+)/, 'addhandler'],
  [/^inherit\s+(.+)/, 'inherit'],
  [/^inherit_defer\s+(.+)/, 'inherit_defer'],
];

function rstrip(s: string): string {
  let end = s.length;
  while (end > 0 && isSpace(s[end - 1])) end--;
  return s.slice(0, end);
}

/** Function headers are short; longer lines skip the header regex (bounds its backtracking). */
const MAX_HEADER = 4096;

/** Parses BitBake metadata. Problems are reported as diagnostics, never thrown. */
export function parseBitbake(text: string, kind: FileKind): ParseResult {
  const statements: Statement[] = [];
  const diagnostics: Diagnostic[] = [];
  const diag = (line: number, code: DiagnosticCode, message: string) =>
    diagnostics.push({ line, code, message });
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();

  let func: FunctionDef | undefined;
  let def: PythonDef | undefined;
  let residue: string[] = [];
  let residueStart = 0;

  const closeDef = (endLine: number) => {
    if (!def) return;
    def.endLine = endLine;
    statements.push(def);
    def = undefined;
  };

  const simple = (s: string, line: number): boolean => {
    const m = matchAssignment(s);
    if (m) {
      const parts = splitVariable(m.variable);
      const problem = oldOverrideProblem(m.variable);
      if (problem) diag(line, 'OLD_OVERRIDE_SYNTAX', problem);
      if (m.variable.split(':').some((p, i) => p === '' && i > 0))
        diag(line, 'EMPTY_OVERRIDE', `'${m.variable}' has an empty override`);
      if (!expansionBalanced(m.value))
        diag(line, 'UNBALANCED_EXPANSION', `'${m.variable}' has an unclosed \${...}`);
      statements.push({ type: 'assignment', line, ...m, ...parts });
      return true;
    }
    for (const [re, type, confOnly] of SIMPLE_DIRECTIVES) {
      if (confOnly && kind !== 'conf') continue;
      const r = re.exec(s);
      if (r) {
        statements.push({ type, line, argument: r.slice(1).join(' ') });
        return true;
      }
    }
    return false;
  };

  const recipeOnly = (s: string, line: number): boolean => {
    const header = s.length <= MAX_HEADER ? FUNC_START.exec(s) : null;
    if (header) {
      const prefix = header[1] ?? '';
      const name = header[2] ?? '__anonymous';
      func = {
        type: 'function',
        line,
        endLine: line,
        name,
        python: /python/.test(prefix),
        fakeroot: /fakeroot/.test(prefix),
        body: [],
      };
      const problem = oldOverrideProblem(name);
      if (problem) diag(line, 'OLD_OVERRIDE_SYNTAX', problem);
      return true;
    }
    const d = DEF.exec(s);
    if (d) {
      def = { type: 'def', line, endLine: line, name: d[1] as string, body: [s] };
      return true;
    }
    for (const [re, type] of RECIPE_DIRECTIVES) {
      const r = re.exec(s);
      if (r) {
        statements.push({ type, line, argument: r[1] as string });
        return true;
      }
    }
    return false;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const s = rstrip(lines[i] as string);

    if (func) {
      if (s === '}') {
        func.endLine = line;
        statements.push(func);
        func = undefined;
      } else {
        if (func.python && /^ *\t/.test(s))
          diag(line, 'TAB_IN_PYTHON', 'python should be indented with spaces, not tabs');
        func.body.push(s);
      }
      continue;
    }
    if (def) {
      if (PY_BODY.test(s)) {
        if (/^ *\t/.test(s)) diag(line, 'TAB_IN_PYTHON', 'python should be indented with spaces, not tabs');
        def.body.push(s);
        continue;
      }
      closeDef(line - 1);
    }

    if (s.startsWith('#') && residue.length > 0 && !(residue[0] as string).startsWith('#'))
      diag(line, 'COMMENT_IN_CONTINUATION', 'a comment in the middle of a multi-line expression');
    if (residue.length > 0 && (residue[0] as string).startsWith('#') && !s.startsWith('#'))
      diag(
        line,
        'COMMENT_IN_CONTINUATION',
        'a commented line continues (\\) into a line that is not a comment',
      );
    if (s.endsWith('\\')) {
      if (residue.length === 0) residueStart = line;
      residue.push(s.slice(0, -1));
      continue;
    }
    const first = residue.length > 0 ? residueStart : line;
    const joined = residue.join('') + s;
    residue = [];
    if (joined === '' || joined.startsWith('#')) continue;

    if (kind === 'recipe' ? recipeOnly(joined, first) || simple(joined, first) : simple(joined, first))
      continue;
    if (
      kind === 'conf' &&
      ((joined.length <= MAX_HEADER && FUNC_START.test(joined)) ||
        DEF.test(joined) ||
        /^(inherit|addtask|addhandler|deltask|EXPORT_FUNCTIONS)\s/.test(joined))
    )
      diag(first, 'NOT_ALLOWED_IN_CONF', `not allowed in a configuration file: '${joined.slice(0, 80)}'`);
    else diag(first, 'UNPARSED_LINE', `unparsed line: '${joined.slice(0, 80)}'`);
  }
  if (def) closeDef(lines.length);
  if (func) {
    const f = func as FunctionDef;
    diag(f.line, 'UNCLOSED_FUNCTION', `function '${f.name}' has no closing '}' at the start of a line`);
  }
  if (residue.length > 0)
    diag(residueStart, 'CONTINUATION_AT_EOF', 'the file ends inside a line continuation');
  statements.sort((a, b) => a.line - b.line);
  return { statements, diagnostics };
}
