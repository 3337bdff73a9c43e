import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ASSIGNMENT_OPERATORS } from '../defs.js';
import {
  type Assignment,
  expansionBalanced,
  matchAssignment,
  oldOverrideProblem,
  parseBitbake,
  splitVariable,
} from './parser.js';

const one = (text: string, kind: 'conf' | 'recipe' = 'recipe') => {
  const r = parseBitbake(text, kind);
  expect(r.diagnostics).toEqual([]);
  expect(r.statements).toHaveLength(1);
  return r.statements[0]!;
};
const codes = (text: string, kind: 'conf' | 'recipe' = 'recipe') =>
  parseBitbake(text, kind).diagnostics.map((d) => d.code);

describe('assignments', () => {
  for (const op of ASSIGNMENT_OPERATORS) {
    it(`parses the ${op} operator`, () => {
      const a = one(`FOO ${op} "bar baz"\n`) as Assignment;
      expect(a).toMatchObject({
        type: 'assignment',
        variable: 'FOO',
        operator: op,
        value: 'bar baz',
        quote: '"',
      });
      const tight = one(`FOO${op}'x'`) as Assignment;
      expect(tight).toMatchObject({ variable: 'FOO', operator: op, value: 'x', quote: "'" });
    });
  }

  it('matches variables lazily like bitbake (A+= is A +=, A.= is A .=)', () => {
    expect(matchAssignment('A+="1"')).toMatchObject({ variable: 'A', operator: '+=' });
    expect(matchAssignment('A.="1"')).toMatchObject({ variable: 'A', operator: '.=' });
    expect(matchAssignment('A:="1"')).toMatchObject({ variable: 'A', operator: ':=' });
    expect(matchAssignment('A=+"1"')).toMatchObject({ variable: 'A', operator: '=+' });
    expect(matchAssignment('A??="1"')).toMatchObject({ variable: 'A', operator: '??=' });
  });

  it('splits overrides, the operation and its conditions', () => {
    const a = one('RDEPENDS:${PN}:append:vipc = " x"') as Assignment;
    expect(a).toMatchObject({
      base: 'RDEPENDS',
      overrides: ['${PN}'],
      operation: 'append',
      conditions: ['vipc'],
    });
    expect(splitVariable('A:remove')).toMatchObject({ base: 'A', overrides: [], operation: 'remove' });
    expect(splitVariable('A:prepend:x:y')).toMatchObject({ operation: 'prepend', conditions: ['x', 'y'] });
    expect(splitVariable('COMPATIBLE_MACHINE:pn-dpdk')).toMatchObject({
      overrides: ['pn-dpdk'],
      operation: undefined,
    });
  });

  it('parses flags, export, unset and values with inner quotes', () => {
    expect(one('do_install[depends] += "a:do_b"')).toMatchObject({
      variable: 'do_install',
      flag: 'depends',
      operator: '+=',
    });
    expect(one('SRC_URI[sha256sum] = "abc"')).toMatchObject({ flag: 'sha256sum' });
    expect(one('export FOO = "1"')).toMatchObject({ exported: true, variable: 'FOO' });
    expect(one('export FOO')).toMatchObject({ type: 'export', argument: 'FOO' });
    expect(one('unset FOO')).toMatchObject({ type: 'unset', argument: 'FOO' });
    expect(one('unset FOO[doc]')).toMatchObject({ type: 'unset', argument: 'FOO[doc]' });
    expect(one(`A = "it's \\"fine\\""`)).toMatchObject({ value: `it's \\"fine\\"` });
    expect(one("A = \"${@bb.utils.contains('X', 'y', '1', '', d)}\"")).toMatchObject({ variable: 'A' });
  });

  it('refuses what bitbake refuses', () => {
    expect(codes('A = unquoted')).toEqual(['UNPARSED_LINE']);
    expect(codes('A = "open')).toEqual(['UNPARSED_LINE']);
    expect(codes("A = 'a'b'")).toEqual(['UNPARSED_LINE']);
    expect(codes(' A = "leading space"')).toEqual(['UNPARSED_LINE']);
    expect(codes('A = "${unclosed"')).toEqual(['UNBALANCED_EXPANSION']);
    expect(codes('A::b = "1"')).toEqual(['EMPTY_OVERRIDE']);
  });

  it('joins continuation lines and reports the first line', () => {
    const r = parseBitbake('# c\n\nSRC_URI = "a \\\n    b \\\n"\nB = "2"\n', 'recipe');
    expect(r.diagnostics).toEqual([]);
    expect(r.statements[0]).toMatchObject({ line: 3, value: 'a     b ' });
    expect(r.statements[1]).toMatchObject({ line: 6, variable: 'B' });
    expect(codes('A = "1 \\')).toEqual(['CONTINUATION_AT_EOF']);
    expect(codes('A = "1 \\\n# comment\n"')).toContain('COMMENT_IN_CONTINUATION');
    expect(codes('# comment \\\nA = "1"')).toContain('COMMENT_IN_CONTINUATION');
  });
});

describe('old override syntax', () => {
  for (const bad of [
    'RDEPENDS_${PN} = "x"',
    'SRC_URI_append = " file://x"',
    'DEPENDS_prepend = "x "',
    'IMAGE_INSTALL_remove = "x"',
    'FILES_${PN}-dev = "x"',
    'EXTRA_OECONF_class-native = "x"',
    'COMPATIBLE_MACHINE_pn-dpdk = "x"',
    'SRC_URI_append_vipc = " x"',
  ]) {
    it(`rejects ${bad.split(' ')[0]}`, () => {
      expect(codes(bad)).toEqual(['OLD_OVERRIDE_SYNTAX']);
    });
  }
  it('rejects old-style function appends', () => {
    expect(codes('do_install_append() {\n    true\n}\n')).toEqual(['OLD_OVERRIDE_SYNTAX']);
  });
  it('accepts names that merely contain an underscore', () => {
    for (const ok of [
      'BBFILE_PATTERN_vipc',
      'LAYERSERIES_COMPAT_vipc',
      'ROOTFS_POSTPROCESS_COMMAND',
      'PREFERRED_PROVIDER_virtual/kernel',
      'do_rootfs',
    ])
      expect(oldOverrideProblem(ok)).toBeUndefined();
    expect(codes('SRC_URI:append:vipc = " x"\nRDEPENDS:${PN}-dev += "y"\n')).toEqual([]);
  });
});

describe('functions and directives', () => {
  it('parses shell, python, fakeroot and anonymous python functions', () => {
    const r = parseBitbake(
      'do_install() {\n    install -d ${D}${bindir}\n}\npython do_x() {\n    bb.note("x")\n}\nfakeroot python do_y () {\n    pass\n}\npython () {\n    d.setVar("A", "1")\n}\npython __anonymous() {\n    pass\n}\ndo_install:append:vipc() {\n    :\n}\n',
      'recipe',
    );
    expect(r.diagnostics).toEqual([]);
    expect(
      r.statements.map((s) => (s.type === 'function' ? [s.name, s.python, s.fakeroot] : s.type)),
    ).toEqual([
      ['do_install', false, false],
      ['do_x', true, false],
      ['do_y', true, true],
      ['__anonymous', true, false],
      ['__anonymous', true, false],
      ['do_install:append:vipc', false, false],
    ]);
    const f = r.statements[0];
    expect(f?.type === 'function' && f.body).toEqual(['    install -d ${D}${bindir}']);
  });

  it('a function ends only at a } alone at the start of a line', () => {
    const r = parseBitbake('do_a() {\n    if true; then\n    }\n  }\n}\nB = "1"\n', 'recipe');
    expect(r.diagnostics).toEqual([]);
    expect(r.statements[0]).toMatchObject({ type: 'function', endLine: 5 });
    expect(codes('do_a() {\n    echo\n')).toEqual(['UNCLOSED_FUNCTION']);
  });

  it('parses python def blocks until the first unindented line', () => {
    const r = parseBitbake('def f(d):\n    x = 1\n\n    return x\nA = "1"\n', 'recipe');
    expect(r.diagnostics).toEqual([]);
    expect(r.statements[0]).toMatchObject({ type: 'def', name: 'f', line: 1, endLine: 4 });
    expect(r.statements[1]).toMatchObject({ type: 'assignment', line: 5 });
    expect(codes('def f(d):\n\treturn 1\n')).toEqual(['TAB_IN_PYTHON']);
  });

  it('parses inherit, include, require, addtask, deltask, addhandler, EXPORT_FUNCTIONS', () => {
    const r = parseBitbake(
      'inherit core-image vipc-guests\ninherit_defer ${X}\ninclude a.inc\nrequire conf/b.inc\naddtask foo after do_compile before do_install\ndeltask do_bar\naddhandler h\nEXPORT_FUNCTIONS do_install\n',
      'recipe',
    );
    expect(r.diagnostics).toEqual([]);
    expect(r.statements.map((s) => s.type)).toEqual([
      'inherit',
      'inherit_defer',
      'include',
      'require',
      'addtask',
      'deltask',
      'addhandler',
      'EXPORT_FUNCTIONS',
    ]);
  });

  it('allows only configuration statements in .conf files', () => {
    expect(
      codes('require conf/x.inc\ninclude y.inc\ninclude_all conf/z.inc\nA ?= "1"\nexport B\n', 'conf'),
    ).toEqual([]);
    expect(codes('inherit foo\n', 'conf')).toEqual(['NOT_ALLOWED_IN_CONF']);
    expect(codes('do_x() {\n}\n', 'conf')).toEqual(['NOT_ALLOWED_IN_CONF', 'UNPARSED_LINE']);
  });

  it('checks ${...} balance with inline python braces', () => {
    expect(expansionBalanced('${@ {"a": 1}["a"] }')).toBe(true);
    expect(expansionBalanced('${A}${B')).toBe(false);
    expect(expansionBalanced('plain } text')).toBe(true);
  });
});

describe('robustness', () => {
  const line = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc.constantFrom(
      'do_x() {',
      '}',
      'python () {',
      'def f(d):',
      '    x',
      '\t\ty',
      'A = "1 \\',
      '# c \\',
      'B += "2"',
      'export',
      'inherit',
      '',
    ),
    fc.stringMatching(
      /^[A-Za-z_:${}+.-]{1,12}\[?[a-z]*\]? ?(=|\?=|\?\?=|:=|\+=|=\+|\.=|=\.) ?["'][^\n]{0,20}["']?$/,
    ),
  );
  it('never throws and reports line numbers inside the input (property)', () => {
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 40 }),
        fc.constantFrom<'conf' | 'recipe'>('conf', 'recipe'),
        (lines, kind) => {
          const text = lines.join('\n');
          const r = parseBitbake(text, kind);
          const n = text.split('\n').length;
          for (const d of r.diagnostics) expect(d.line >= 1 && d.line <= n).toBe(true);
          for (const s of r.statements) expect(s.line >= 1 && s.line <= n).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('bounded fuzz: random bytes and mutated real files never crash (2000 runs or 10 s)', () => {
    const seed =
      'SRC_URI = "file://a \\\n    file://b"\npython () {\n    if d.getVar("A"):\n        raise bb.parse.SkipRecipe("x")\n}\ndo_install() {\n    install -d ${D}${bindir}\n}\n';
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.nat(seed.length),
        fc.string({ maxLength: 8 }),
        (bytes, at, ins) => {
          parseBitbake(Buffer.from(bytes).toString('latin1'), 'recipe');
          parseBitbake(seed.slice(0, at) + ins + seed.slice(at), 'recipe');
          parseBitbake(seed.slice(0, at) + ins + seed.slice(at), 'conf');
        },
      ),
      { numRuns: 2000, interruptAfterTimeLimit: 10_000 },
    );
  });

  it('stays linear on pathological lines (no regex blow-up)', () => {
    const big = 200_000;
    for (const text of [
      'A'.repeat(big),
      `${'+'.repeat(big)}= "x"`,
      `${'python '.repeat(big / 7)}x{`,
      `A = "${'${'.repeat(big / 2)}"`,
      `${' '.repeat(big)}x`,
      `addpylib ${'a '.repeat(big / 2)}`,
      `def f${'('.repeat(big)}`,
      `${'\\\n'.repeat(big / 2)}A = "1"`,
    ]) {
      const r = parseBitbake(text, 'recipe');
      expect(Array.isArray(r.diagnostics)).toBe(true);
    }
  });
});
