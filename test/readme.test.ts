import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import tsupConfig from '../tsup.config.js';

/**
 * Every ```ts block in README.md type-checks under the project's strict compiler options,
 * each block as its own ES module, with `bulwark` and its subpaths mapped to src/ and the
 * real types of express, fastify, prom-client, ioredis and node. A block declares what it
 * does not build itself with `declare const`. One Program checks all blocks at once.
 */
const root = resolve(import.meta.dirname, '..');

interface Block {
  /** 1-based line of the block's first code line in README.md. */
  line: number;
  code: string;
  /** The in-memory file the block is checked as (beside package.json, so it is ESM). */
  file: string;
}

/** The ```ts (or ```typescript) fenced blocks of a markdown text, indentation removed. */
function tsBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(ts|typescript)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !/^\s*```\s*$/.test(lines[j]!)) body.push(lines[j++]!.slice(indent));
    if (j === lines.length) throw new Error(`README.md:${i + 1}: unclosed code block`);
    // `export {}` makes a block without imports a module too, so blocks never share names.
    blocks.push({
      line: i + 2,
      code: `${body.join('\n')}\nexport {};\n`,
      file: join(root, `README.block-${i + 2}.ts`),
    });
    i = j;
  }
  return blocks;
}

/**
 * `bulwark` and each of its subpaths, mapped to the source file tsup builds it from: the
 * package's "exports" name the built file, tsup's entries name its source.
 */
function bulwarkPaths(): Record<string, string[]> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    exports: Record<string, string | { import: { default: string } }>;
  };
  const entries = tsupConfig as unknown as { entry: Record<string, string> };
  const paths: Record<string, string[]> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue; // ./package.json
    const built = target.import.default.replace(/^\.\/dist\//, '').replace(/\.js$/, '');
    const source = entries.entry[built];
    if (source === undefined) throw new Error(`no tsup entry builds ${target.import.default}`);
    paths[subpath === '.' ? 'bulwark' : `bulwark/${subpath.slice(2)}`] = [join(root, source)];
  }
  return paths;
}

function compilerOptions(): ts.CompilerOptions {
  const configFile = join(root, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(configFile, (f) => ts.sys.readFile(f));
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, root, undefined, configFile);
  return { ...parsed.options, noEmit: true, paths: bulwarkPaths() };
}

const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = tsBlocks(readme);
const diagnostics = new Map<string, string[]>();
let checkCpuMs = 0;

beforeAll(() => {
  const started = process.cpuUsage();
  const options = compilerOptions();
  const virtual = new Map(blocks.map((b) => [b.file, b.code]));
  const host = ts.createCompilerHost(options, true);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (f) => virtual.has(f) || fileExists.call(host, f);
  host.readFile = (f) => virtual.get(f) ?? readFile.call(host, f);
  host.getSourceFile = (f, languageVersion, onError, shouldCreate) => {
    const code = virtual.get(f);
    return code === undefined
      ? getSourceFile.call(host, f, languageVersion, onError, shouldCreate)
      : ts.createSourceFile(f, code, languageVersion, true);
  };
  const program = ts.createProgram({ rootNames: [...virtual.keys()], options, host });
  for (const b of blocks) {
    const messages = ts.getPreEmitDiagnostics(program, program.getSourceFile(b.file)).map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      if (d.file === undefined || d.start === undefined) return text;
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      const where =
        d.file.fileName === b.file
          ? `README.md:${b.line + line}:${character + 1}`
          : `${d.file.fileName}:${line + 1}`;
      return `${where} ${text}`;
    });
    diagnostics.set(b.file, messages);
  }
  const spent = process.cpuUsage(started);
  checkCpuMs = (spent.user + spent.system) / 1000;
}, 60_000);

describe('README.md code blocks', () => {
  it('finds the blocks, the headline example among them', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    expect(blocks.some((b) => b.code.includes('dependencies('))).toBe(true);
  });

  // CPU time, not wall time: on a shared machine the wall clock measures the neighbours.
  // Measured ≈ 3 s, most of it parsing @types/node and src/ once; a Program per block
  // would multiply that.
  it('type-checks them all in one Program in under 10 s of CPU', () => {
    expect(checkCpuMs).toBeLessThan(10_000);
  });

  for (const block of blocks) {
    it(`compiles the block at README.md:${block.line} under strict TypeScript`, () => {
      expect(diagnostics.get(block.file)).toEqual([]);
    });
  }
});
