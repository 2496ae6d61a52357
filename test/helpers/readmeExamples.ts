import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { REPO_ROOT } from './paths.js';

/** The first code block of `language` under the README heading `heading`, with the address replaced by `address`. */
export function readmeExample(heading: string, language: string, address: string): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README has no heading ${heading}`);
  const section = readme.slice(start + heading.length + 2);
  const end = section.search(/\n#{2,3} /);
  const match = new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(end < 0 ? section : section.slice(0, end));
  if (!match) throw new Error(`README's ${heading} has no \`\`\`${language} block`);
  return match[1].replaceAll('localhost:50051', address);
}
