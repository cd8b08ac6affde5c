// BuildKit's Node.Dump(): the s-expression form used by the parser testfiles.

import type { Node } from './ast';
import { goQuote, goQuoteSlice, trimSpace } from './gostr';

function dumpInstruction(node: Node): string {
  let out = node.value.toLowerCase();
  if (node.flags.length > 0) out += ' ' + goQuoteSlice(node.flags);
  for (const arg of node.next) out += ' ' + goQuote(arg);
  if (node.subcommand) out += ' (' + dumpInstruction(node.subcommand) + ')';
  return trimSpace(out);
}

/**
 * One `(keyword ["flags"] "arg" ...)` line per instruction, ONBUILD nested
 * as `(onbuild (run "x"))`. Matches the testfiles' `result` minus the final
 * newline. Dumping a single instruction node gives its line without parentheses.
 */
export function dump(node: Node): string {
  if (node.children.length === 0 && node.value !== '') return dumpInstruction(node);
  let out = node.value.toLowerCase();
  for (const child of node.children) out += '(' + dumpInstruction(child) + ')\n';
  return trimSpace(out);
}
